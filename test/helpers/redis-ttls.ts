import type { Redis } from 'ioredis';

/** Every key under the prefix (plain and hash-tagged), with its TTL in ms (-1: none). */
export async function ttls(client: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const pattern of [`${prefix}:*`, `{${prefix}:g}:*`]) {
    for (const key of await client.keys(pattern)) out[key] = await client.pttl(key);
  }
  return out;
}
