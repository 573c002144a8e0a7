/**
 * BullMQ queues under the configured prefix (hash-tagged, Redis Cluster-safe) with bounded
 * retention, and the Redis connections BullMQ wants.
 */
import { type DefaultJobOptions, Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { type Keys, QUEUE_NAMES, type QueueName } from '../../shared/keys.js';

/** Bounded retention: enough to inspect in Bull Board, never unbounded growth. */
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  removeOnComplete: { count: 1000, age: 3600 },
  removeOnFail: { count: 5000, age: 7 * 24 * 3600 },
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
};

/** Workers and blocking clients need `maxRetriesPerRequest: null` (BullMQ's rule). */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...options });
  return client;
}

export type Queues = Record<QueueName, Queue>;

export function createQueues(connection: Redis, keys: Keys, logger?: Logger): Queues {
  const make = (name: QueueName) => {
    const queue = new Queue(name, {
      connection,
      prefix: keys.bullPrefix,
      defaultJobOptions: DEFAULT_JOB_OPTIONS,
    });
    // Without a listener BullMQ prints every connection error; the client logs the outage once.
    queue.on('error', (err) => logger?.debug({ queue: name, err: err.message }, 'queue error'));
    return queue;
  };
  return {
    poll: make(QUEUE_NAMES.poll),
    reconcile: make(QUEUE_NAMES.reconcile),
    results: make(QUEUE_NAMES.results),
    alerts: make(QUEUE_NAMES.alerts),
  };
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.allSettled(Object.values(queues).map((q) => q.close()));
}

/**
 * Refuse a Redis that may evict keys: BullMQ loses jobs under any policy but `noeviction`.
 * Returns an error message, or null when the server is fit.
 */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
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
