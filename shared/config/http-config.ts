/** `server { http { } }`: the HTTP surface on listen_http (docs/configuration.md, "server.http"). */
import { proxyEntryProblem } from '../client-address.js';
import type { BodySchema, ConfigBodyReader } from './config-body-reader.js';
import type { ServerConfig } from './types.js';

export const HTTP_SCHEMA: BodySchema = { attributes: ['allowed_hosts', 'trusted_proxies'], blocks: {} };

/** A host name, an IPv4 or IPv6 literal (brackets optional), or `*`: no scheme, port or path. */
const HOST_ENTRY = /^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[?[0-9A-Fa-f:.]+\]?)$/;

export function readHttp(r: ConfigBodyReader): ServerConfig['http'] {
  const hosts = r.stringList('allowed_hosts');
  for (const host of hosts ?? []) {
    if (!HOST_ENTRY.test(host)) {
      r.error(
        'allowed_hosts',
        `${JSON.stringify(host)} is not a host name or IP address (no scheme, port or path; "*" allows any)`,
        r.lineOf('allowed_hosts'),
      );
    }
  }
  const proxies = r.stringList('trusted_proxies') ?? [];
  for (const entry of proxies) {
    const problem = proxyEntryProblem(entry);
    if (problem) r.error('trusted_proxies', problem, r.lineOf('trusted_proxies'));
  }
  return { allowed_hosts: hosts ?? null, trusted_proxies: proxies };
}
