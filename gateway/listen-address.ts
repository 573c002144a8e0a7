import type { ListenAddress } from '../shared/config/types.js';

/** Parse `host:port`, `:port` or `[v6]:port`; an empty host means every interface. */
export function parseListenAddress(value: string): ListenAddress {
  const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!match) throw new Error(`invalid listen address "${value}": expected host:port or :port`);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`invalid listen address "${value}": port out of range`);
  return { host: match[1] ?? match[2] ?? '', port };
}
