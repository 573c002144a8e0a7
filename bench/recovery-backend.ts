/**
 * The Redis that bench/recovery.ts runs Fluke on: one private redis-server, a 3-master Redis
 * Cluster with replicas (testkit/redis-cluster.ts) or a master watched by three Sentinels
 * (testkit/redis-sentinel.ts). Each gives the `redis { … }` block of the server config, a client
 * for the bench's own reads, and the faults it can suffer.
 */
import type { Cluster, Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../testkit/redis.js';
import { startRedisCluster, type TestRedisCluster } from '../testkit/redis-cluster.js';
import { startRedisSentinel, type TestRedisSentinel } from '../testkit/redis-sentinel.js';

export type BackendKind = 'single' | 'cluster' | 'sentinel';

export interface Backend {
  kind: BackendKind;
  prefix: string;
  /** The body of `server.redis { … }`, prefix included. */
  redisBlock: string;
  client(): Redis | Cluster;
  single: TestRedis | null;
  cluster: TestRedisCluster | null;
  sentinel: TestRedisSentinel | null;
  stop(): Promise<void>;
}

export async function startBackend(kind: BackendKind): Promise<Backend> {
  if (kind === 'cluster') {
    const c = await startRedisCluster({ masters: 3, replicas: 1 });
    const nodes = c.nodes.map((n) => JSON.stringify(n)).join(', ');
    return {
      kind,
      prefix: c.prefix,
      redisBlock: `cluster_nodes = [${nodes}]\n    prefix = "${c.prefix}"`,
      client: () => c.client(),
      single: null,
      cluster: c,
      sentinel: null,
      stop: () => c.stop(),
    };
  }
  if (kind === 'sentinel') {
    const s = await startRedisSentinel({ replicas: 1 });
    const list = s.sentinels.map((n) => JSON.stringify(n)).join(', ');
    return {
      kind,
      prefix: s.prefix,
      redisBlock: `sentinels = [${list}]\n    master_name = "${s.masterName}"\n    prefix = "${s.prefix}"`,
      client: () => s.client(),
      single: null,
      cluster: null,
      sentinel: s,
      stop: () => s.stop(),
    };
  }
  const r = await startRedis();
  return {
    kind,
    prefix: r.prefix,
    redisBlock: `url    = "${r.url}"\n    prefix = "${r.prefix}"`,
    client: () => r.client(),
    single: r,
    cluster: null,
    sentinel: null,
    stop: () => r.stop(),
  };
}
