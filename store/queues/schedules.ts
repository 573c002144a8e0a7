/**
 * The repeating jobs: the Git poll and the drift tick. They live in Redis as BullMQ job schedulers,
 * so no long-lived reconciler is needed for them to fire. A FLUSHALL deletes them; every gateway and
 * reconciler re-upserts them periodically (idempotent), so they come back within one period.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors.js';
import { driftTickJob, pollNowJob, scheduledPollJob } from '../../shared/jobs/builders.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';
import { addJob, type Queues } from './queues.js';

export const POLL_SCHEDULER = 'git-poll';
export const DRIFT_SCHEDULER = 'drift-tick';

/** How often the drift tick runs: a twelfth of the poll interval, between 1 s and 60 s. */
export function driftTickEvery(pollIntervalMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(pollIntervalMs / 12)));
}

export async function upsertSchedules(queues: Queues, pollIntervalMs: number): Promise<void> {
  await queues.poll.upsertJobScheduler(POLL_SCHEDULER, { every: pollIntervalMs }, scheduledPollJob());
  await queues.reconcile.upsertJobScheduler(
    DRIFT_SCHEDULER,
    { every: driftTickEvery(pollIntervalMs) },
    driftTickJob(),
  );
}

/** Keep the schedules alive across FLUSHALL; logs once per outage, not per tick. */
export function keepSchedules(queues: Queues, pollIntervalMs: number, logger: Logger): () => void {
  let failing = false;
  const run = () => {
    upsertSchedules(queues, pollIntervalMs).then(
      () => {
        if (failing) logger.info('job schedulers restored');
        failing = false;
      },
      (err: unknown) => {
        if (!failing) logger.warn({ err: errorMessage(err) }, 'could not upsert job schedulers; will retry');
        failing = true;
      },
    );
  };
  run();
  const timer = setInterval(run, Math.min(pollIntervalMs, 30_000));
  timer.unref();
  return () => clearInterval(timer);
}

/** Ask for a poll now (webhook, start-up). Deduplicated while one is waiting. */
export async function pollNow(queues: Queues): Promise<void> {
  await addJob(queues.poll, pollNowJob());
}

/**
 * The drift tick's window: from where the last tick ended (at most one poll interval back) to
 * `end`, which becomes the next tick's start. One GETSET, so concurrent ticks never share a window.
 */
export async function advanceDriftCursor(
  redis: RedisClient,
  keys: Keys,
  now: number,
  end: number,
  pollIntervalMs: number,
): Promise<number> {
  const previous = await redis.set(keys.driftCursor(), String(end), 'GET');
  return Math.max(previous ? Number(previous) : now, now - pollIntervalMs);
}
