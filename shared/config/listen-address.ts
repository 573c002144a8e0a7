import type { ListenAddress } from './types.js';

/**
 * Splits "host:port", ":port" or "[v6]:port"; an empty host means all interfaces.
 * Throws an Error whose message is fit for an operator.
 */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(\[[0-9A-Fa-f:.%a-zA-Z]+\]|[^:[\]\s]*):(\d{1,5})$/.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) {
    throw new Error(`must be "host:port", ":port" or "[v6addr]:port", got ${JSON.stringify(text)}`);
  }
  const port = Number(m[2]);
  if (port > 65_535) throw new Error(`port ${port} is out of range (0-65535)`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}
