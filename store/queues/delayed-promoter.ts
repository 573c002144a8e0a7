/**
 * Moves delayed jobs whose time has come into their queue's wait list, from processes that run no
 * workers (gateways). BullMQ promotes due delayed jobs only from inside a running worker, and
 * Fluke delays a lot: drift checks spread over `poll_interval`, instruction deadlines, busy
 * retries, alert backoff. With reconcilers run only as queue-scaled jobs (KEDA watching the wait
 * lists), nothing would ever move those jobs to `wait`, so no job would start for them. Gateways
 * are always up (they hold the agents), so they do it; with long-lived reconcilers as well,
 * whoever comes first promotes a job and the other finds it gone.
 */
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors.js';
import type { RedisClient } from '../redis/client.js';

/** Jobs looked at per queue per tick; due ones beyond this wait for the next tick. */
const BATCH = 200;

export interface PromoterOptions {
  /** A client of the queues' Redis, to read the delayed sets. */
  redis: RedisClient;
  queues: readonly Queue[];
  logger: Logger;
  /** How often to look (default 1 s): a delayed job runs at most this late. */
  everyMs?: number;
  now?: () => number;
}

/**
 * BullMQ scores a delayed job `due ms × 0x1000 + counter` (commands/includes/getDelayedScore.lua).
 * The due time must come from the score: a retried job keeps its creation `timestamp` and only a
 * new `delay` (its backoff counts from the failure), so `timestamp + delay` would promote retries
 * long before their backoff is over.
 */
export function dueScoreBound(now: number): number {
  return (now + 1) * 0x1000 - 1;
}

/** One pass over every queue; returns how many jobs it promoted. */
export async function promoteDue(redis: RedisClient, queues: readonly Queue[], now: number): Promise<number> {
  let promoted = 0;
  for (const queue of queues) {
    const delayed = queue.keys.delayed ?? `${queue.qualifiedName}:delayed`;
    // One ZRANGEBYSCORE when nothing is due, which is nearly always.
    const ids = await redis.zrangebyscore(delayed, 0, dueScoreBound(now), 'LIMIT', 0, BATCH);
    for (const id of ids) {
      try {
        const job = await queue.getJob(id);
        if (!job) continue;
        await job.promote();
        promoted++;
      } catch {
        // Promoted, run or removed by someone else meanwhile: nothing to do.
      }
    }
  }
  return promoted;
}

/** Runs promoteDue every `everyMs` until the returned stop function is called. */
export function keepPromoting(options: PromoterOptions): () => void {
  const now = options.now ?? Date.now;
  let failing = false;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    promoteDue(options.redis, options.queues, now())
      .then(
        () => {
          if (failing) options.logger.info('promoting due delayed jobs again');
          failing = false;
        },
        (err: unknown) => {
          if (!failing)
            options.logger.warn({ err: errorMessage(err) }, 'could not promote due delayed jobs; will retry');
          failing = true;
        },
      )
      .finally(() => {
        running = false;
      });
  }, options.everyMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
