/**
 * The instruction store port: dispatched instructions waiting for results.
 *
 * Glossary: an *instruction* is one dispatch of planned tasks to one agent session; each of its
 * tasks is `pending` until a result (or the deadline) *finishes* it with an outcome. *Completing*
 * an instruction means every task is accounted for: the record is kept a little longer for late
 * results, then forgotten. A record that is gone (expired) is never recreated by a late write.
 */
import type { PlannedTask, Trigger } from '../../shared/plan.js';

export type InstructionTask = PlannedTask;

export interface InstructionRecord {
  instruction_id: string;
  agent: string;
  session_id: string;
  trigger: Trigger;
  run_id: string | null;
  revision: string;
  created_at: string;
  /** How often this reconcile was already put back because the agent was busy. */
  retry: number;
  tasks: InstructionTask[];
}

export type FoundInstruction = {
  record: InstructionRecord;
  pending: string[];
  /** Finished tasks → their outcome (`requeued` when a busy agent's task was put back). */
  outcomes?: Record<string, string>;
};

/** One instruction's part of settleMany: settleTasks's arguments. */
export interface Settle {
  instruction_id: string;
  done: ReadonlyArray<{ task: string; outcome: string }>;
  complete: boolean;
}

export interface InstructionStore {
  /** Saving again (a re-run job) adds missing tasks as pending and never resets finished ones. */
  save(record: InstructionRecord): Promise<void>;
  get(instructionId: string): Promise<FoundInstruction | null>;
  /** get() of each id, in order. */
  getMany(instructionIds: readonly string[]): Promise<Array<FoundInstruction | null>>;
  /** Marks a task finished; returns how many tasks are still pending (0 when gone). Idempotent. */
  finishTask(instructionId: string, task: string, outcome: string): Promise<number>;
  /** settleMany of one instruction: how many of its tasks are still pending, or its error thrown. */
  settleTasks(
    instructionId: string,
    done: ReadonlyArray<{ task: string; outcome: string }>,
    complete?: boolean,
  ): Promise<number>;
  /**
   * Marks each instruction's `done` finished (later entries win), then completes the record if no
   * task is left pending, or anyway when `complete` is set. Settled per instruction: how many tasks
   * are still pending (0 for a record that is gone).
   */
  settleMany(settles: ReadonlyArray<Settle>): Promise<PromiseSettledResult<number>[]>;
  /** Every task is accounted for: keep the record a little longer for late results, then forget it. */
  complete(instructionId: string): Promise<void>;
}

/** settleMany of one instruction: how many of its tasks are still pending, or its error thrown. */
export async function settleOne(
  store: Pick<InstructionStore, 'settleMany'>,
  instructionId: string,
  done: ReadonlyArray<{ task: string; outcome: string }>,
  complete: boolean,
): Promise<number> {
  const [result] = await store.settleMany([{ instruction_id: instructionId, done, complete }]);
  if (result?.status !== 'fulfilled') throw result?.reason;
  return result.value;
}
