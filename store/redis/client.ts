/**
 * The one Redis client factory and the one fitness check every role runs on it. Other components
 * name the client type `RedisClient` and never import ioredis.
 */
import { Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis;
export type RedisClientOptions = RedisOptions;

/** Workers and blocking clients need `maxRetriesPerRequest: null` (BullMQ's rule). */
export function createRedis(url: string, options: RedisClientOptions = {}): RedisClient {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...options });
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
