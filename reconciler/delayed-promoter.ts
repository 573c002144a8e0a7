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

/** Jobs looked at per queue per tick; due ones beyond this wait for the next tick. */
const BATCH = 200;

export interface PromoterOptions {
  queues: readonly Queue[];
  logger: Logger;
  /** How often to look (default 1 s): a delayed job runs at most this late. */
  everyMs?: number;
  now?: () => number;
}

/** One pass over every queue; returns how many jobs it promoted. */
export async function promoteDue(queues: readonly Queue[], now: number): Promise<number> {
  let promoted = 0;
  for (const queue of queues) {
    // One ZCOUNT when nothing is due, which is nearly always.
    if ((await queue.getDelayedCount(now + 1)) === 0) continue;
    for (const job of await queue.getDelayed(0, BATCH - 1)) {
      if (job.timestamp + (job.delay ?? 0) > now) break; // earliest first: the rest are later
      try {
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
    promoteDue(options.queues, now())
      .then(
        () => {
          if (failing) options.logger.info('promoting due delayed jobs again');
          failing = false;
        },
        (err: unknown) => {
          if (!failing)
            options.logger.warn({ err: String(err) }, 'could not promote due delayed jobs; will retry');
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
