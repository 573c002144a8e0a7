/**
 * Whether to accept a run instruction: the rules behind "no double apply" on the agent side.
 * Pure: the runner passes in what it knows.
 */
import type { InstructionReceiptMessage, RefusalCode, RunMessage } from '../shared/protocol.js';

export interface AdmissionState {
  /** False while the agent shuts down. */
  accepting: boolean;
  /** The instruction id was accepted before (it may still be running, or long finished). */
  seen(instructionId: string): boolean;
  /** The instruction id currently executing this task, if any. */
  busyWith(task: string): string | undefined;
}

/** A refusal's `code` is what the reconciler acts on; `reason` is for people (and logs). */
export type Admission = { accepted: true } | { accepted: false; code: RefusalCode; reason: string };

export function admit(run: Pick<RunMessage, 'instruction_id' | 'tasks'>, state: AdmissionState): Admission {
  if (!state.accepting) return { accepted: false, code: 'shutting_down', reason: 'agent is shutting down' };
  if (state.seen(run.instruction_id)) {
    return {
      accepted: false,
      code: 'duplicate',
      reason: `duplicate instruction ${run.instruction_id}: already run by this agent`,
    };
  }
  const names = new Set<string>();
  const executions = new Set<string>();
  for (const task of run.tasks) {
    if (names.has(task.task))
      return {
        accepted: false,
        code: 'invalid',
        reason: `task ${task.task} appears twice in the instruction`,
      };
    if (executions.has(task.execution_id)) {
      return {
        accepted: false,
        code: 'invalid',
        reason: `execution id ${task.execution_id} appears twice in the instruction`,
      };
    }
    names.add(task.task);
    executions.add(task.execution_id);
    const busy = state.busyWith(task.task);
    // At most one execution per task at a time: refuse the whole instruction rather than run part of it.
    if (busy !== undefined)
      return {
        accepted: false,
        code: 'busy',
        reason: `task ${task.task} is already executing (instruction ${busy})`,
      };
  }
  return { accepted: true };
}

/** The receipt that tells the gateway an admission decision (a refusal carries its code). */
export function receiptOf(instructionId: string, decision: Admission): InstructionReceiptMessage {
  return {
    type: 'instruction_receipt',
    instruction_id: instructionId,
    accepted: decision.accepted,
    reason: decision.accepted ? null : decision.reason,
    ...(decision.accepted ? {} : { code: decision.code }),
  };
}
