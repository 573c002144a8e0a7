import { Cluster, type Redis } from 'ioredis';

/**
 * Every key under the prefix (plain and hash-tagged: `{<prefix>:…}`), with its TTL in ms (-1:
 * none). On a cluster, every master is asked: KEYS sees only the node it runs on.
 */
export async function ttls(client: Redis | Cluster, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  for (const node of nodes) {
    for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) {
      for (const key of await node.keys(pattern)) out[key] = await client.pttl(key);
    }
  }
  return out;
}
