/**
 * The repeating jobs: the Git poll and the drift tick. They live in Redis as BullMQ job schedulers,
 * so no long-lived reconciler is needed for them to fire. A FLUSHALL deletes them; every gateway and
 * reconciler re-upserts them periodically (idempotent), so they come back within one period.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors.js';
import type { Queues } from './queues.js';

export const POLL_SCHEDULER = 'git-poll';
export const DRIFT_SCHEDULER = 'drift-tick';

/** How often the drift tick runs: a twelfth of the poll interval, between 1 s and 60 s. */
export function driftTickEvery(pollIntervalMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(pollIntervalMs / 12)));
}

export async function upsertSchedules(queues: Queues, pollIntervalMs: number): Promise<void> {
  await queues.poll.upsertJobScheduler(POLL_SCHEDULER, { every: pollIntervalMs }, { name: 'poll', data: {} });
  await queues.reconcile.upsertJobScheduler(
    DRIFT_SCHEDULER,
    { every: driftTickEvery(pollIntervalMs) },
    { name: 'drift-tick', data: {} },
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
  await queues.poll.add('poll', {}, { jobId: 'poll-now', removeOnComplete: true, removeOnFail: true });
}
