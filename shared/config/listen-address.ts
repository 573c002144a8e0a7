import type { ListenAddress } from './types.js';

/**
 * Splits "host:port", ":port" or "[v6]:port"; an empty host means all interfaces. Throws an
 * Error whose message is fit for an operator (the config loader shows it after the field name).
 *
 * The one rule for every listener (agents, HTTP). It is the config loader's strict rule: no
 * whitespace, no stray brackets, only address characters inside `[...]`. The gateway and the
 * console parse addresses the loader already checked, so a looser rule there (the gateway once
 * trimmed and took anything in brackets) could only accept what a config file never passes.
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
