/**
 * The one Redis client factory and the one fitness check every role runs on it. Other components
 * name the client type `RedisClient` and never import ioredis.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisConfig } from '../../shared/config/types.js';
import { sentinelOptions } from './sentinel.js';

/** One Redis, or a Redis Cluster (`server.redis.cluster_nodes`): every store takes either. */
export type RedisClient = Redis | Cluster;
export type RedisClientOptions = RedisOptions;

/** What a store may ask of a duplicate: its own auto-pipelined connection (one Redis only: see duplicateClient). */
export interface DuplicateOptions {
  enableAutoPipelining?: boolean;
}

/** While Redis stays unreachable, one connection-error line per this interval at most. */
export const REDIS_ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * Where the connection errors of a client and all its duplicates go: a logger (warn, rate-limited)
 * or nothing. Either way every client has an 'error' listener, so ioredis never prints
 * "Unhandled error event" (once per reconnect attempt) for a client nobody listens to.
 */
export interface RedisErrorLog {
  logger?: Logger;
  /** Default REDIS_ERROR_LOG_INTERVAL_MS. */
  intervalMs?: number;
}

/** Workers and blocking clients need `maxRetriesPerRequest: null` (BullMQ's rule). */
export function createRedis(
  url: string,
  options: RedisClientOptions = {},
  errors: RedisErrorLog = {},
): Redis {
  const base = { maxRetriesPerRequest: null, enableReadyCheck: true, ...options };
  // With Sentinels (store/redis/sentinel.ts) they find the master: url's host:port is not used.
  const client = options.sentinels ? new Redis(base) : new Redis(url, base);
  guardErrors(client, rateLimitedLog(errors));
  return client;
}

/**
 * The client `server.redis` describes: a Cluster for `cluster_nodes`, one Redis at `url` otherwise.
 * Every branch carries `maxRetriesPerRequest: null` (BullMQ's rule) and the rate-limited error log.
 */
export function createRedisFor(
  config: Pick<RedisConfig, 'url' | 'cluster_nodes' | 'sentinels' | 'master_name' | 'sentinel_password'>,
  errors: RedisErrorLog = {},
): RedisClient {
  if (config.cluster_nodes.length > 0) return createCluster(config.cluster_nodes, {}, errors);
  // With Sentinels the client (and every duplicate) follows the master (store/redis/sentinel.ts).
  return createRedis(config.url, sentinelOptions(config) ?? {}, errors);
}

/**
 * How long a command on a Cluster keeps retrying while its slot has no master: a master failover
 * is `cluster-node-timeout` (Redis default 15 s) plus the replica's election (about 1–2 s). Like
 * a command on one Redis during an outage (`maxRetriesPerRequest: null`), it waits instead of
 * failing, so no BullMQ job or inbox read fails for a failover.
 */
export const CLUSTER_FAILOVER_WAIT_MS = 60_000;
/** Pause before a command is sent again after its node closed, CLUSTERDOWN or TRYAGAIN. */
export const CLUSTER_RETRY_DELAY_MS = 200;

/**
 * ioredis counts a command's retries (`maxRedirections`, default 16: 1.6 s at its 100 ms delay, so
 * every command in flight failed with "Too many Cluster redirections" long before a replica took
 * over). While the slot's old master is down, each retry asks a live node, which answers MOVED to
 * the dead master at once (no delay), then the connection to it closes (one delay): two
 * redirections per CLUSTER_RETRY_DELAY_MS, so this many span CLUSTER_FAILOVER_WAIT_MS.
 */
export function clusterRetryOptions(
  waitMs = CLUSTER_FAILOVER_WAIT_MS,
  delayMs = CLUSTER_RETRY_DELAY_MS,
): Pick<
  ClusterOptions,
  'maxRedirections' | 'retryDelayOnFailover' | 'retryDelayOnClusterDown' | 'retryDelayOnTryAgain'
> {
  return {
    maxRedirections: Math.max(16, 2 * Math.ceil(waitMs / delayMs)),
    retryDelayOnFailover: delayMs,
    retryDelayOnClusterDown: delayMs,
    retryDelayOnTryAgain: delayMs,
  };
}

/**
 * A Redis Cluster client from seed URLs (they share scheme and credentials: the config checks it).
 * Reads go to masters (a replica may lag: BullMQ and the stores read what they just wrote).
 * Commands wait through a master failover (clusterRetryOptions).
 */
export function createCluster(
  nodes: readonly string[],
  options: ClusterOptions = {},
  errors: RedisErrorLog = {},
): Cluster {
  const urls = nodes.map((n) => new URL(n));
  const first = urls[0];
  if (!first) throw new Error('a Redis Cluster needs at least one seed node');
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    ...options.redisOptions,
  };
  const cluster = new Cluster(
    urls.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) })),
    { scaleReads: 'master', enableReadyCheck: true, ...clusterRetryOptions(), ...options, redisOptions },
  );
  guardErrors(cluster, rateLimitedLog(errors));
  return cluster;
}

/**
 * A new connection to the same Redis or Cluster (the two `duplicate` signatures differ).
 * A Cluster duplicate is never auto-pipelined: ioredis batches a tick's commands per node into
 * one pipeline over many slots, and when that node's master is gone the live node answers MOVED
 * with a different slot for each command, which ioredis cannot retry: every command failed with a
 * raw "MOVED <slot> <dead master>" throughout a failover. Single commands are retried per slot.
 */
export function duplicateClient(client: RedisClient, options: DuplicateOptions = {}): RedisClient {
  if (client instanceof Cluster) return client.duplicate([], { ...options, enableAutoPipelining: false });
  return client.duplicate(options);
}

/**
 * The server's `run_id` (INFO server): another value after a reconnect means another server — a
 * Sentinel promoted a replica, or Redis restarted — which may lack writes the last one acknowledged.
 * Null for a Cluster (each node has its own; onClusterNodeLoss covers it) or when INFO is refused.
 */
export async function redisRunId(client: RedisClient): Promise<string | null> {
  if (client instanceof Cluster) return null;
  try {
    return /run_id:(\w+)/.exec(await client.info('server'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Calls `onLoss` when a Cluster client loses the connection to one of its nodes while it is
 * running (a master killed and replaced by its replica, a node restarted or removed): whatever
 * that node held and had not replicated yet (instructions in a gateway's inbox stream, registry
 * writes) may be gone. At once, and once per lost node: until the replica takes over, ioredis
 * reconnects to the dead address for every MOVED that names it, each ending alike; a node counts
 * as lost again only once a connection to it was ready. `onLoss` should first wait for the slots
 * it cares about (a command on them waits through the failover). One Redis: nothing to watch (a
 * restart shows as rebuilt registry entries). Returns the stop function.
 */
export function onClusterNodeLoss(client: RedisClient, onLoss: () => Promise<void>): () => void {
  if (!(client instanceof Cluster)) return () => {};
  const lost = new Set<string>();
  const keyOf = (node: Redis) => `${node.options.host}:${node.options.port}`;
  const removed = (node: Redis) => {
    if (client.status !== 'ready' || lost.has(keyOf(node))) return;
    lost.add(keyOf(node));
    void onLoss().catch(() => {});
  };
  const added = (node: Redis) => node.once('ready', () => lost.delete(keyOf(node)));
  client.on('-node', removed);
  client.on('+node', added);
  return () => {
    client.off('-node', removed);
    client.off('+node', added);
  };
}

type ErrorSink = { error(err: Error): void; ready(): void };

function rateLimitedLog({ logger, intervalMs = REDIS_ERROR_LOG_INTERVAL_MS }: RedisErrorLog): ErrorSink {
  let lastLogged = 0;
  let suppressed = 0;
  let failing = false;
  return {
    error(err) {
      failing = true;
      const now = Date.now();
      if (now - lastLogged < intervalMs) {
        suppressed++;
        return;
      }
      logger?.warn({ err: err.message, suppressed }, 'redis connection error; retrying');
      lastLogged = now;
      suppressed = 0;
    },
    ready() {
      if (failing) logger?.info('redis connection restored');
      failing = false;
      lastLogged = 0;
      suppressed = 0;
    },
  };
}

/**
 * An 'error' listener on this client and on every client duplicated from it, however deep
 * (BullMQ duplicates the client it is given for its workers' blocking connections, and removes
 * its own listener when it closes them while ioredis may still be reconnecting).
 */
function guardErrors(client: RedisClient, sink: ErrorSink): void {
  client.on('error', (err: Error) => sink.error(err));
  client.on('ready', () => sink.ready());
  if (client instanceof Cluster) {
    const duplicate = client.duplicate.bind(client);
    client.duplicate = ((...args: Parameters<Cluster['duplicate']>) => {
      const copy = duplicate(...args);
      guardErrors(copy, sink);
      return copy;
    }) as Cluster['duplicate'];
    return;
  }
  const duplicate = client.duplicate.bind(client);
  client.duplicate = ((override?: Partial<RedisOptions>) => {
    const copy = duplicate(override) as Redis;
    guardErrors(copy, sink);
    return copy;
  }) as Redis['duplicate'];
}

/**
 * Refuse a Redis that may evict keys: BullMQ loses jobs under any policy but `noeviction`.
 * Returns an error message, or null when the server is fit.
 */
export async function checkEvictionPolicy(redis: RedisClient): Promise<string | null> {
  if (!(redis instanceof Cluster)) return checkNode(redis, 'Redis');
  // Every node the client holds: every master (reads go to masters, so replicas are not connected).
  await redis.ping(); // waits for the slot map, so nodes() lists the cluster
  for (const node of redis.nodes('all')) {
    const problem = await checkNode(node, `Redis node ${node.options.host}:${node.options.port}`);
    if (problem) return problem;
  }
  return null;
}

async function checkNode(redis: Redis, what: string): Promise<string | null> {
  let policy: string | undefined;
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    policy = reply[1];
  } catch {
    // CONFIG may be disabled (managed Redis); fall back to INFO.
    const info = await redis.info('memory');
    policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  }
  if (policy === undefined || policy === 'noeviction') return null;
  return `${what} maxmemory-policy is "${policy}"; Fluke needs "noeviction" (BullMQ jobs would be evicted). Set it with: redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf).`;
}
