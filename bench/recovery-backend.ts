/**
 * The Redis that bench/recovery.ts runs Fluke on: one private redis-server, a 3-master Redis
 * Cluster with replicas (testkit/redis-cluster.ts) or a master watched by three Sentinels
 * (testkit/redis-sentinel.ts). Each gives the `redis { … }` block of the server config, a client
 * for the bench's own reads, and the faults it can suffer.
 */
import { readFileSync } from 'node:fs';
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

/**
 * Why the processes cannot run on this kind of Redis yet, or null when they can. The topology
 * settings are parsed on main, but until the client factory reads them every process would still
 * connect to `url`: the scenario would measure a single Redis under a misleading name.
 */
export function notWiredReason(kind: BackendKind): string | null {
  if (kind === 'single') return null;
  const setting = kind === 'cluster' ? 'cluster_nodes' : 'sentinels';
  const owner = kind === 'cluster' ? 'part 2' : 'part 3';
  const files = ['../store/redis/client.ts', '../bin/redis-wiring.ts'];
  const wired = files.some((f) => {
    try {
      return readFileSync(new URL(f, import.meta.url), 'utf8').includes(setting);
    } catch {
      return false;
    }
  });
  return wired
    ? null
    : `server.redis.${setting} is parsed but not wired into the Redis clients yet (${owner} of issue 12): store/redis/client.ts and bin/redis-wiring.ts never read it`;
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
