/**
 * Who may read listen_http (HTTP API, web UI, Bull Board, /metrics) when `api_read_access` is
 * `auto`, the default: anyone when listen_http binds a loopback address only, API-token holders
 * otherwise. Pure; docs/configuration.md.
 */
import { isIP } from 'node:net';
import { parseListenAddress } from './listen-address.js';

export type ReadAccess = 'open' | 'token';

export interface ResolvedReadAccess {
  access: ReadAccess;
  /** One sentence for the start-up log line. */
  reason: string;
}

/** 127.0.0.0/8, ::1 (and its IPv4-mapped form) and `localhost`: only this host can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped?.[1]?.startsWith('127.') ?? false;
  }
  return false;
}

export function resolveReadAccess(configured: ReadAccess | 'auto', listenHttp: string): ResolvedReadAccess {
  if (configured !== 'auto') {
    return { access: configured, reason: `api_read_access = "${configured}"` };
  }
  const { host } = parseListenAddress(listenHttp);
  if (host !== '' && isLoopbackHost(host)) {
    return {
      access: 'open',
      reason: `api_read_access = "auto" and listen_http ${listenHttp} is loopback only`,
    };
  }
  const everywhere = host === '' || host === '0.0.0.0' || host === '::';
  return {
    access: 'token',
    reason: `api_read_access = "auto" and listen_http ${listenHttp} ${everywhere ? 'binds every interface' : 'is not loopback'}`,
  };
}
