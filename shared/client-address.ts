/**
 * The address a request really came from, behind a load balancer (`server.http.trusted_proxies`).
 *
 * Glossary:
 * - peer: the TCP peer of the socket (`getRemoteAddressAsText`): the balancer, when there is one.
 * - proxied: the source address a PROXY protocol v2 header gave (`getProxiedRemoteAddressAsText`;
 *   the native uWebSockets.js strips that header on any connection and reports it, empty if none).
 * - forwarded: the `X-Forwarded-For` request header an HTTP balancer appends to.
 *
 * Only a peer listed in trusted_proxies may speak for its client: anyone can send a PROXY header
 * or an X-Forwarded-For, so from any other peer both are ignored and the peer is the client.
 */
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  /** No entry: every peer is a client (the default). */
  readonly empty: boolean;
  trusts(address: string): boolean;
}

/**
 * A list entry is an IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`). Returns the problem
 * with one entry, or null when it is fine (the config loader reports it with its file:line).
 */
export function proxyEntryProblem(entry: string): string | null {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  const shape = `${JSON.stringify(entry)} is not an IP address or CIDR range (e.g. "10.0.0.0/8", "fd00::/8")`;
  if (family === 0 || rest.length > 0) return shape;
  if (prefix === undefined) return null;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
  const max = family === 4 ? 32 : 128;
  if (bits < 0 || bits > max) return `${JSON.stringify(entry)}: the prefix length must be 0-${max}`;
  return null;
}

/** Throws on an entry proxyEntryProblem refuses (config loading has reported those already). */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const entry of entries) {
    const problem = proxyEntryProblem(entry);
    if (problem) throw new Error(`trusted_proxies: ${problem}`);
    const [address = '', prefix] = entry.split('/');
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return {
    empty: entries.length === 0,
    trusts(address) {
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

export const NO_TRUSTED_PROXIES: TrustedProxies = trustedProxies([]);

/**
 * The client's address. From a trusted peer: the PROXY v2 source when the balancer sent one, else
 * the nearest X-Forwarded-For hop that is not itself a trusted proxy (read right to left: the
 * rightmost entries are the ones our own balancers appended; anything left of the first untrusted
 * one was written by the client and proves nothing), else the peer. A malformed hop ends the walk
 * at the last trusted address: a garbage header never hands a client a chosen identity.
 */
export function clientAddress(
  peer: string,
  proxied: string,
  forwarded: string,
  trusted: TrustedProxies,
): string {
  if (trusted.empty || !trusted.trusts(peer)) return peer;
  if (proxied !== '') return proxied;
  let nearest = peer;
  const hops = forwarded.split(',').map((hop) => hop.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] ?? '';
    if (hop === '') continue;
    if (isIP(hop) === 0) return nearest;
    if (!trusted.trusts(hop)) return hop;
    nearest = hop;
  }
  return nearest;
}
