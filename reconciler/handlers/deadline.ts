/**
 * Deadline: turns an agent's silence into `timeout`, never a hung job. Checked every few
 * heartbeats while results are pending: an agent that is still connected and reports the
 * instruction as running gets more time (up to a hard cap); one that is gone, or alive but not
 * running it (restarted, or never received it), times out after three consecutive misses.
 */

import type { DeadlineJob } from '../../shared/jobs/payloads.js';
import type { InstructionRecord } from '../../store/instructions/instruction-store.js';

export interface DeadlineDeps {
  getInstruction(id: string): Promise<{ record: InstructionRecord; pending: string[] } | null>;
  /** true: the agent is connected and says it runs this instruction; false: it does not; */
  isRunning(agent: string, instructionId: string): Promise<boolean>;
  timeOut(record: InstructionRecord, tasks: string[], waitedMs: number): Promise<void>;
  /**
   * Tells the executions' live watchers they ended in `timeout` (an end record on their output
   * channel). Best effort: a watcher also learns it from the instruction record.
   */
  endExecutions?(ends: Array<{ agent: string; task: string; execution_id: string }>): Promise<void>;
  reschedule(data: DeadlineJob, delayMs: number): Promise<void>;
  checkEveryMs: number;
  /** No instruction may wait longer than this, whatever the agent says. */
  maxWaitMs: number;
  now?: () => number;
}

/** How many consecutive checks may find the agent not running an instruction before it times out. */
export const MISSES_ALLOWED = 3;

export type DeadlineOutcome = 'finished' | 'waiting' | 'timed_out';

export async function deadlineHandler(data: DeadlineJob, deps: DeadlineDeps): Promise<DeadlineOutcome> {
  const now = deps.now ?? Date.now;
  const found = await deps.getInstruction(data.instruction_id);
  if (!found || found.pending.length === 0) return 'finished';
  const waited = now() - Date.parse(found.record.created_at);
  const running = await deps.isRunning(found.record.agent, data.instruction_id);
  const misses = running ? 0 : data.misses + 1;
  if (waited >= deps.maxWaitMs || misses >= MISSES_ALLOWED) {
    await deps.timeOut(found.record, found.pending, waited);
    const ends = found.record.tasks
      .filter((t) => found.pending.includes(t.task))
      .map((t) => ({ agent: found.record.agent, task: t.task, execution_id: t.execution_id }));
    await deps.endExecutions?.(ends).catch(() => {});
    return 'timed_out';
  }
  await deps.reschedule({ instruction_id: data.instruction_id, misses }, deps.checkEveryMs);
  return 'waiting';
}
