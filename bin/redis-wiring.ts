/**
 * The Redis clients of a process: the main one (refused when Redis may evict keys) and the event
 * store's, which is a separate Redis when `event_store.redis.url` says so.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../shared/config/load.js';
import type { ServerConfig } from '../shared/config/types.js';
import { Keys } from '../shared/keys.js';
import type { EventStore } from '../store/events/event-store.js';
import { MemoryEventStore } from '../store/events/memory-event-store.js';
import { RedisEventStore } from '../store/events/redis-event-store.js';
import { ensureIdentityKey, keepIdentityKey } from '../store/identity/identity-key.js';
import {
  checkEvictionPolicy,
  createRedis,
  type RedisClient,
  type RedisClientOptions,
} from '../store/redis/client.js';
import { sentinelOptions } from '../store/redis/sentinel.js';
import type { ShutdownStep } from './shutdown.js';
import type { Role } from './wiring-context.js';

export interface ProcessClients {
  redis: RedisClient;
  /** The event store's own Redis, when it is not the main one. */
  eventsRedis: RedisClient | null;
  events: EventStore;
}

/** Fails with a clear message on an evicting Redis: BullMQ would lose jobs. */
async function connectRedis(
  url: string,
  logger: Logger,
  options: RedisClientOptions = {},
): Promise<RedisClient> {
  // Connection errors of this client and of every client duplicated from it: warn, rate-limited.
  const redis = createRedis(url, options, { logger });
  const problem = await checkEvictionPolicy(redis);
  if (problem) {
    redis.disconnect();
    throw new ConfigError([{ file: 'redis', line: 0, field: 'server.redis.url', message: problem }]);
  }
  return redis;
}

export async function connectClients(
  config: ServerConfig,
  role: Role,
  logger: Logger,
): Promise<ProcessClients> {
  // Refuse a memory event store outside the all-in-one server before connecting to anything.
  if (config.event_store.backend === 'memory') eventStoreFor(config, role, null, null);
  // With Sentinels the client (and every duplicate) follows the master; the eviction check runs on it.
  const redis = await connectRedis(config.redis.url, logger, sentinelOptions(config.redis) ?? {});
  let eventsRedis: RedisClient | null = null;
  try {
    if (config.event_store.backend === 'redis' && config.event_store.redis.url !== config.redis.url) {
      eventsRedis = await connectRedis(config.event_store.redis.url, logger);
    }
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return { redis, eventsRedis, events: eventStoreFor(config, role, redis, eventsRedis) };
}

function eventStoreFor(
  config: ServerConfig,
  role: Role,
  redis: RedisClient | null,
  eventsRedis: RedisClient | null,
): EventStore {
  const keys = new Keys(config.redis.prefix);
  if (config.event_store.backend === 'memory') {
    if (role !== 'server') {
      throw new ConfigError([
        {
          file: config.source,
          line: 0,
          field: 'server.event_store.backend',
          message: `"memory" works only for the all-in-one \`fluke server\`: a separate ${role} cannot share it; use "redis"`,
        },
      ]);
    }
    return new MemoryEventStore({ maxEventsPerAgent: config.event_store.memory.max_events_per_agent });
  }
  if (eventsRedis) {
    return new RedisEventStore({
      redis: eventsRedis,
      keys,
      ttlMs: config.event_store.redis.ttl_ms,
      ownsClient: true,
    });
  }
  if (!redis) throw new Error('the redis event store needs a Redis client');
  // Its own auto-pipelined connection: the events of concurrent result handlers share socket writes.
  const client = redis.duplicate({ enableAutoPipelining: true });
  return new RedisEventStore({
    redis: client,
    keys,
    ttlMs: config.event_store.redis.ttl_ms,
    ownsClient: true,
  });
}

/**
 * The process's identity key: derived from `identity.key`, or the random one kept in Redis (then
 * re-asserted every heartbeat interval, and a warning at start that it does not survive losing Redis).
 */
export async function wireIdentityKey(
  config: ServerConfig,
  redis: RedisClient,
  keys: Keys,
  logger: Logger,
  closers: ShutdownStep[],
): Promise<Buffer> {
  const configured = config.identity.key;
  const key = await ensureIdentityKey(redis, keys, configured);
  if (configured === null) {
    logger.warn(
      { redis_key: keys.identityKey() },
      'the identity key lives in Redis: set server.identity.key so agent credentials survive losing Redis',
    );
  }
  const stop = keepIdentityKey({
    redis,
    keys,
    key,
    configured: configured !== null,
    logger,
    intervalMs: config.heartbeat_interval_ms,
  });
  closers.push({ what: 'identity key keeper', run: async () => stop() });
  return key;
}
