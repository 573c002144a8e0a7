/**
 * What every request on listen_http passes before its route runs, and the headers every answer
 * carries (docs/security.md, "HTTP surface"):
 *
 * - The Host allowlist (`server.http.allowed_hosts`): a browser tricked by DNS rebinding sends the
 *   attacker's *name* as Host, so a name must be listed; IP literals cannot be rebound and are
 *   always accepted, and so is `localhost` (no one else can make it resolve). A request without
 *   Host (HTTP/1.0 probes) gets only the health routes. Refused: 421 `host_not_allowed`.
 * - State-changing methods that carry an `Origin` must come from this server as reached: the
 *   Origin's host and port equal the (allowed) Host, with `https` when TLS is on. Else 403
 *   `cross_site`. No Origin (CLI, curl, scripts): allowed, the token governs.
 * - Security headers on every response; a route's own (the UI's and the board's CSP) win.
 */
import { isIP } from 'node:net';
import { errorBody, type HttpRequest, type HttpResponse } from './router.js';

/** Methods that change state: an Origin on them is checked. */
export const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Routes a request without a Host header may reach (HTTP/1.0 health checks). */
export const HOSTLESS_PATHS = new Set(['/healthz', '/readyz']);

/** For answers that are not pages (JSON, events, files): nothing may load or frame them. */
export const DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Sent on every HTTP response; a route's own value for a header replaces this one. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': DEFAULT_CSP,
};

export interface HostPolicy {
  /** `"*"` was listed: any Host. */
  readonly any: boolean;
  /** Allowed names, lower-case, no trailing dot (IP literals need no entry). */
  readonly names: ReadonlySet<string>;
}

/** Wildcard addresses name no host: binding to them adds nothing to the default list. */
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

function normalizeName(name: string): string {
  const lower = name.trim().toLowerCase();
  const unbracketed = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

/**
 * `allowed` is `server.http.allowed_hosts` (null: not set). The default is `localhost` plus the
 * host part of listen_http when it names one; IP literals are accepted either way.
 */
export function hostPolicy(allowed: readonly string[] | null, listenHost: string): HostPolicy {
  const names = new Set<string>(['localhost']);
  if (allowed === null) {
    if (!WILDCARDS.has(listenHost)) names.add(normalizeName(listenHost));
  } else {
    for (const name of allowed) names.add(normalizeName(name));
  }
  return { any: names.has('*'), names };
}

/** The host part of a Host header value (`name:port`, `[v6]:port`, `name`), or null if malformed. */
export function hostPart(header: string): string | null {
  const value = header.trim();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0) return null;
    const rest = value.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    return value.slice(1, end).toLowerCase();
  }
  const m = /^([^:\s/@]+)(?::\d{1,5})?$/.exec(value);
  return m?.[1] ? normalizeName(m[1]) : null;
}

export function hostAllowed(policy: HostPolicy, host: string): boolean {
  if (policy.any) return true;
  const name = normalizeName(host);
  return isIP(name) !== 0 || policy.names.has(name);
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** `host[:port]` lower-case, the scheme's default port dropped, IPv6 bracketed. */
function authority(host: string, port: string, scheme: string): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return port === '' || port === DEFAULT_PORT[scheme] ? h.toLowerCase() : `${h.toLowerCase()}:${port}`;
}

/**
 * Is `origin` this server as the request reached it? Same host and port as the Host header, and
 * an allowed host; `https` when TLS is on (behind a TLS-terminating proxy the listener is plain
 * HTTP, so then `http` and `https` are both accepted).
 */
export function originMatches(origin: string, hostHeader: string, policy: HostPolicy, tls: boolean): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // includes the opaque "null" origin
  }
  if (url.protocol !== 'https:' && (tls || url.protocol !== 'http:')) return false;
  if (!hostAllowed(policy, url.hostname)) return false;
  let reached: URL;
  try {
    reached = new URL(`${url.protocol}//${hostHeader.trim()}`);
  } catch {
    return false;
  }
  return (
    authority(url.hostname, url.port, url.protocol) ===
    authority(reached.hostname, reached.port, reached.protocol)
  );
}

export interface GuardOptions {
  policy: HostPolicy;
  tls: boolean;
}

/** Null when the request may go on to its route; else the refusal to send. */
export function guardRequest(
  req: Pick<HttpRequest, 'method' | 'path' | 'headers'>,
  o: GuardOptions,
): HttpResponse | null {
  const host = req.headers.host ?? '';
  if (host === '') {
    if (HOSTLESS_PATHS.has(req.path)) return null;
    return {
      status: 421,
      json: errorBody(
        'host_not_allowed',
        'send a Host header (only /healthz and /readyz answer without one)',
      ),
    };
  }
  const name = hostPart(host);
  if (name === null || !hostAllowed(o.policy, name)) {
    return {
      status: 421,
      json: errorBody(
        'host_not_allowed',
        `Host ${JSON.stringify(host)} is not in server.http.allowed_hosts (list the name this server is reached by)`,
      ),
    };
  }
  const origin = req.headers.origin;
  if (
    origin !== undefined &&
    STATE_CHANGING.has(req.method) &&
    !originMatches(origin, host, o.policy, o.tls)
  ) {
    return {
      status: 403,
      json: errorBody('cross_site', `Origin ${JSON.stringify(origin)} is not this server: request refused`),
    };
  }
  return null;
}

/** The headers to write: the security defaults, then the route's own (names lower-cased). */
export function responseHeaders(own: Record<string, string> | undefined): Record<string, string> {
  const headers: Record<string, string> = { ...SECURITY_HEADERS };
  for (const [k, v] of Object.entries(own ?? {})) headers[k.toLowerCase()] = v;
  return headers;
}
