/**
 * Instruction ids for the instructions one reconcile job sends. Stable across retries of the job
 * (its id and creation time), unique across FLUSHALLs (the timestamp), and safe in Redis keys,
 * BullMQ job ids and the agent's recent-id set.
 */
import { randomUUID } from 'node:crypto';

export interface JobIdentity {
  id?: string | undefined;
  /** Creation time (ms). */
  timestamp: number;
}

/**
 * `i<job id>-<timestamp>` for a single-agent job (no index), `i<job id>-<index>-<timestamp>` for
 * the agent at `index` in a many-agent job.
 */
export function instructionIds(job: JobIdentity): (index?: number) => string {
  const base = `i${job.id ?? randomUUID()}`;
  const stamp = job.timestamp.toString(36);
  return (index) =>
    (index === undefined ? `${base}-${stamp}` : `${base}-${index}-${stamp}`).replace(
      /[^A-Za-z0-9._~-]/g,
      '_',
    );
}
