/**
 * BullMQ queues under the configured prefix (hash-tagged, Redis Cluster-safe) with bounded
 * retention. Names, options and payloads are shared/jobs/; only this folder touches BullMQ.
 */
import { type JobsOptions, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { DEFAULT_JOB_OPTIONS, type JobSpec, QUEUE_NAMES, type QueueName } from '../../shared/jobs/options.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';

/** A BullMQ queue handle; add jobs with `addJob` or `queue.add(spec.name, spec.data, spec.opts)`. */
export type JobQueueHandle = Queue;

export type Queues = Record<QueueName, JobQueueHandle>;

export interface OpenQueueOptions {
  /** Default: DEFAULT_JOB_OPTIONS; null = BullMQ's own (each job then carries all its options). */
  defaults?: JobsOptions | null;
  /** Without a listener BullMQ prints every connection error. */
  onError?: (err: Error) => void;
}

export function openQueue(
  name: QueueName,
  connection: RedisClient,
  keys: Keys,
  options: OpenQueueOptions = {},
): JobQueueHandle {
  const defaults = options.defaults === undefined ? DEFAULT_JOB_OPTIONS : options.defaults;
  const queue = new Queue(name, {
    connection,
    prefix: keys.bullPrefix(name),
    ...(defaults ? { defaultJobOptions: defaults } : {}),
  });
  const onError = options.onError;
  if (onError) queue.on('error', (err) => onError(err));
  return queue;
}

export function createQueues(connection: RedisClient, keys: Keys, logger?: Logger): Queues {
  // The client logs an outage once; queue errors only at debug.
  const make = (name: QueueName) =>
    openQueue(name, connection, keys, {
      onError: (err) => logger?.debug({ queue: name, err: err.message }, 'queue error'),
    });
  return {
    poll: make(QUEUE_NAMES.poll),
    reconcile: make(QUEUE_NAMES.reconcile),
    results: make(QUEUE_NAMES.results),
    alerts: make(QUEUE_NAMES.alerts),
  };
}

export async function addJob(queue: JobQueueHandle, spec: JobSpec<unknown>): Promise<void> {
  await queue.add(spec.name, spec.data, spec.opts);
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.allSettled(Object.values(queues).map((q) => q.close()));
}

/** True when no queue has anything waiting or active (delayed jobs do not count). */
export async function queuesIdle(queues: Queues): Promise<boolean> {
  const counts = await Promise.all(
    Object.values(queues).map((q) => q.getJobCounts('waiting', 'active', 'prioritized', 'waiting-children')),
  );
  return counts.every((c) => Object.values(c).every((n) => n === 0));
}
