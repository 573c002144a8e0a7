/**
 * The Redis bench/reconcile.ts runs on: one private redis-server, or (`--redis-cluster`) a private
 * Redis Cluster of 3 masters with a replica each (testkit/redis-cluster.ts). Either way the bench
 * gets a client for keys and queues, a direct client per node (INFO, CONFIG RESETSTAT), and the
 * `redis { … }` lines of the server config.
 */
import { Redis } from 'ioredis';
import type { RedisClient } from '../store/redis/client.js';
import { startRedis } from '../testkit/redis.js';
import { startRedisCluster } from '../testkit/redis-cluster.js';

export interface BenchRedis {
  cluster: boolean;
  prefix: string;
  /** A single server's URL (the BullMQ baseline runs there); null for a cluster. */
  url: string | null;
  /** The `url = …` or `cluster_nodes = […]` line of the server config's redis block. */
  hclLine: string;
  /** A fresh client for keys and queues (a cluster client for a cluster). */
  client(): RedisClient;
  /** One direct client per node, masters and replicas (closed by stop()). */
  nodes(): Redis[];
  stop(): Promise<void>;
}

export async function startBenchRedis(cluster: boolean): Promise<BenchRedis> {
  const direct: Redis[] = [];
  if (!cluster) {
    const r = await startRedis();
    return {
      cluster,
      prefix: r.prefix,
      url: r.url,
      hclLine: `url = "${r.url}"`,
      client: () => r.client(),
      nodes: () => {
        if (direct.length === 0) direct.push(r.client());
        return direct;
      },
      stop: () => r.stop(),
    };
  }
  const c = await startRedisCluster({ masters: 3, replicas: 1 });
  return {
    cluster,
    prefix: c.prefix,
    url: null,
    hclLine: `cluster_nodes = [${c.nodes.map((n) => JSON.stringify(n)).join(', ')}]`,
    client: () => c.client() as unknown as RedisClient,
    nodes: () => {
      if (direct.length === 0) for (const url of c.nodes) direct.push(new Redis(url));
      return direct;
    },
    async stop() {
      for (const d of direct) d.disconnect();
      await c.stop();
    },
  };
}
