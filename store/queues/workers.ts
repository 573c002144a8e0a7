/**
 * BullMQ workers for the reconciler: one per queue, with the handler's payload errors made
 * unrecoverable, worker errors logged once per kind, and a bounded close.
 */
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { coerceError } from '../../shared/errors.js';
import type { QueueName } from '../../shared/jobs/options.js';
import { InvalidJobError } from '../../shared/jobs/payloads.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';

/** Thrown by a handler, fails the job at once: no retry could help. */
export { UnrecoverableError };

/** A job as a handler sees it (name, data, id, timestamp, attempts…). */
export type QueueJob = Job;

export interface JobWorker {
  readonly name: string;
  /** Lets running jobs finish for up to `graceMs` (Redis may be gone), then forces. */
  close(graceMs: number): Promise<void>;
}

export interface CreateWorkerOptions {
  connection: RedisClient;
  keys: Keys;
  concurrency: number;
  logger: Logger;
  /** For jobs whose backoff type BullMQ does not know (alerts). */
  backoffStrategy?: (attemptsMade: number, type?: string, err?: Error) => number;
}

export function createWorker(
  queue: QueueName,
  handler: (job: QueueJob) => Promise<unknown>,
  o: CreateWorkerOptions,
): JobWorker {
  const processor = async (job: Job) => {
    try {
      return await handler(job);
    } catch (err) {
      // A payload no schema accepts fails the same way on every attempt.
      if (err instanceof InvalidJobError) throw new UnrecoverableError(err.message);
      throw err;
    }
  };
  const worker = new Worker(queue, processor, {
    connection: o.connection,
    prefix: o.keys.bullPrefix(queue),
    concurrency: o.concurrency,
    ...(o.backoffStrategy ? { settings: { backoffStrategy: o.backoffStrategy } } : {}),
  });
  logWorkerEvents(worker, o.logger);
  return {
    name: worker.name,
    async close(graceMs) {
      await Promise.race([worker.close(), new Promise((r) => setTimeout(r, graceMs).unref())]);
      await worker.close(true);
    },
  };
}

function logWorkerEvents(worker: Worker, logger: Logger): void {
  const loggedErrors = new Set<string>();
  // After a FLUSHALL, in-flight jobs fail with "Missing key"; workers carry on. Log once per kind.
  worker.on('error', (err) => {
    const kind = `${worker.name}:${coerceError(err).message.slice(0, 60)}`;
    if (loggedErrors.has(kind)) return;
    loggedErrors.add(kind);
    setTimeout(() => loggedErrors.delete(kind), 60_000).unref();
    logger.warn({ queue: worker.name, err: coerceError(err).message }, 'worker error');
  });
  worker.on('failed', (job, err) => {
    logger.warn(
      {
        queue: worker.name,
        job: job?.id,
        job_name: job?.name,
        err: err.message,
        attempts: job?.attemptsMade,
      },
      'job failed',
    );
  });
}
