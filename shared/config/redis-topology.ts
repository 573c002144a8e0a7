/**
 * How Fluke reaches Redis beyond one `url`: the seed nodes of a Redis Cluster, or the Sentinels
 * that watch a master. Pure parsing and validation; store/redis/client.ts builds the clients.
 */
import type { ConfigBodyReader } from './config-body-reader.js';
import type { RedisConfig } from './types.js';

/** More seed nodes or Sentinels than anyone needs to list; the client discovers the rest. */
export const MAX_REDIS_SEEDS = 64;

export type RedisTopology = Pick<
  RedisConfig,
  'cluster_nodes' | 'sentinels' | 'master_name' | 'sentinel_password'
>;

/** `host:port` or `[v6]:port` → its parts, or null when it is not one. */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65_535) return null;
  return { host: (m[1] ?? m[2]) as string, port };
}

/** What a cluster seed URL must share with the others: ioredis applies one set of options to all nodes. */
function access(url: URL): string {
  return `${url.protocol}//${url.username}:${url.password}`;
}

function readClusterNodes(r: ConfigBodyReader): string[] {
  const nodes = r.stringList('cluster_nodes') ?? [];
  const line = r.lineOf('cluster_nodes');
  if (nodes.length > MAX_REDIS_SEEDS) r.error('cluster_nodes', `at most ${MAX_REDIS_SEEDS} seed nodes`, line);
  let shared: string | null = null;
  for (const node of nodes) {
    let url: URL | null = null;
    try {
      url = new URL(node);
    } catch {
      url = null;
    }
    if (!url || !/^rediss?:$/.test(url.protocol) || !url.hostname || !url.port) {
      r.error(
        'cluster_nodes',
        `each seed node must be redis://host:port or rediss://host:port, got ${JSON.stringify(node)}`,
        line,
      );
      continue;
    }
    shared ??= access(url);
    if (access(url) !== shared) {
      r.error(
        'cluster_nodes',
        'every seed node must use the same scheme (redis/rediss), user and password',
        line,
      );
    }
  }
  return nodes;
}

function readSentinels(r: ConfigBodyReader): string[] {
  const sentinels = r.stringList('sentinels') ?? [];
  const line = r.lineOf('sentinels');
  if (sentinels.length > MAX_REDIS_SEEDS) r.error('sentinels', `at most ${MAX_REDIS_SEEDS} Sentinels`, line);
  for (const s of sentinels) {
    if (!parseHostPort(s))
      r.error('sentinels', `each Sentinel must be host:port, got ${JSON.stringify(s)}`, line);
  }
  return sentinels;
}

/** `cluster_nodes`, or `sentinels` with `master_name` (never both); `url` must not compete with a cluster. */
export function readRedisTopology(r: ConfigBodyReader): RedisTopology {
  const cluster_nodes = readClusterNodes(r);
  const sentinels = readSentinels(r);
  const master_name = r.string('master_name') ?? null;
  const sentinel_password = r.string('sentinel_password') ?? null;
  if (cluster_nodes.length > 0 && sentinels.length > 0) {
    r.error(
      'sentinels',
      'set cluster_nodes or sentinels, not both: a Redis Cluster has no Sentinels',
      r.lineOf('sentinels'),
    );
  }
  if (cluster_nodes.length > 0 && r.string('url') !== undefined) {
    r.error(
      'url',
      'set url or cluster_nodes, not both: with a cluster, the seed nodes say where it is',
      r.lineOf('url'),
    );
  }
  if (sentinels.length > 0 && master_name === null) {
    r.error(
      'sentinels',
      'needs master_name: the name the Sentinels monitor (e.g. "mymaster")',
      r.lineOf('sentinels'),
    );
  }
  if (sentinels.length === 0 && (master_name !== null || sentinel_password !== null)) {
    const field = master_name !== null ? 'master_name' : 'sentinel_password';
    r.error(field, 'only means something with sentinels = ["host:port", …]', r.lineOf(field));
  }
  if (master_name !== null && !/^[A-Za-z0-9_.-]{1,128}$/.test(master_name)) {
    r.error('master_name', 'must be 1–128 letters, digits and _ . -', r.lineOf('master_name'));
  }
  return { cluster_nodes, sentinels, master_name, sentinel_password };
}

/** One Redis at `url`: no cluster, no Sentinels (what configs built in code start from). */
export const SINGLE_REDIS: RedisTopology = Object.freeze({
  cluster_nodes: [],
  sentinels: [],
  master_name: null,
  sentinel_password: null,
});
