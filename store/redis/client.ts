/**
 * The one Redis client factory and the one fitness check every role runs on it. Other components
 * name the client type `RedisClient` and never import ioredis.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export type RedisClient = Redis;
export type RedisClientOptions = RedisOptions;

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
): RedisClient {
  const base = { maxRetriesPerRequest: null, enableReadyCheck: true, ...options };
  // With Sentinels (store/redis/sentinel.ts) they find the master: url's host:port is not used.
  const client = options.sentinels ? new Redis(base) : new Redis(url, base);
  guardErrors(client, rateLimitedLog(errors));
  return client;
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
function guardErrors(client: Redis, sink: ErrorSink): void {
  client.on('error', (err: Error) => sink.error(err));
  client.on('ready', () => sink.ready());
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
  return `Redis maxmemory-policy is "${policy}"; Fluke needs "noeviction" (BullMQ jobs would be evicted). Set it with: redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf).`;
}
