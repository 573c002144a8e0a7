/**
 * Builders for the literal data the handler tests feed in. The stores' in-memory twins live in
 * store/ beside their Redis versions (store/<port>/memory-*.ts), checked by the same contracts.
 */
import pino from 'pino';
import type { ResultJob } from '../../shared/jobs/payloads.js';
import type {
  CheckResultMessage,
  InstructionReceiptMessage,
  StepResult,
  TaskResultMessage,
} from '../../shared/protocol.js';
import type { RegistryEntry } from '../../shared/registry-entry.js';
import type { Labels, StepOutcome, TaskOutcome } from '../../shared/types.js';
import type { InstructionRecord, InstructionStore } from '../../store/instructions/instruction-store.js';
import type { RunStore } from '../../store/runs/run-store.js';

export const silentLogger = pino({ level: 'silent' });

/** Saves the record as the reconcile handler would, with run progress when it has a run. */
export async function dispatchRecord(
  instructions: Pick<InstructionStore, 'save'>,
  runs: Pick<RunStore, 'get' | 'create' | 'setAgents' | 'setAgentState'>,
  record: InstructionRecord,
): Promise<InstructionRecord> {
  await instructions.save(record);
  if (record.run_id) {
    if (!(await runs.get(record.run_id)))
      await runs.create({ id: record.run_id, target: 'all', name: null, created_at: record.created_at });
    await runs.setAgents(record.run_id, [record.agent]);
    await runs.setAgentState(
      record.run_id,
      record.agent,
      'dispatched',
      record.tasks.map((p) => p.task),
      record.tasks.map((p) => p.execution_id),
    );
  }
  return record;
}

// ---- builders ----------------------------------------------------------------------------------

export function agentEntry(name: string, labels: Labels, running: string[] = []): RegistryEntry {
  return {
    name,
    labels,
    gateway_id: 'gw-1',
    session_id: `s-${name}`,
    connected_at: 1_000,
    last_seen: 2_000,
    agent_version: '0.1.0',
    executors: ['shell'],
    running,
  };
}

export function stepResult(
  step: string,
  outcome: StepOutcome,
  applyExitCode: number | null = null,
): StepResult {
  return {
    step,
    type: 'shell',
    outcome,
    exit_code: outcome === 'satisfied' || outcome === 'applied' ? 0 : 1,
    apply_exit_code: applyExitCode,
    duration_ms: 5,
    output_tail: `${step}: ${outcome}\n`,
    error: null,
  };
}

type ResultMessage = Extract<ResultJob, { kind: 'result' }>['message'];

export function resultJob(record: InstructionRecord, message: ResultMessage): ResultJob {
  return {
    kind: 'result',
    agent: record.agent,
    session_id: record.session_id,
    gateway_id: 'gw-1',
    received_at: '2025-03-13T14:22:01.000Z',
    message,
  };
}

/** The task_result for `task` of `record`, with steps as [name, outcome, apply exit code]. */
export function taskResult(
  record: InstructionRecord,
  task: string,
  outcome: TaskOutcome,
  steps: [string, StepOutcome, number | null][],
  resultId = `r-${task}-${outcome}`,
): ResultJob {
  const planned = record.tasks.find((t) => t.task === task);
  if (!planned) throw new Error(`task ${task} is not in instruction ${record.instruction_id}`);
  const message: TaskResultMessage = {
    type: 'task_result',
    result_id: resultId,
    instruction_id: record.instruction_id,
    execution_id: planned.execution_id,
    task,
    mode: planned.mode,
    outcome,
    started_at: '2025-03-13T14:22:00.000Z',
    finished_at: '2025-03-13T14:22:01.000Z',
    duration_ms: 1000,
    steps: steps.map(([step, o, exit]) => stepResult(step, o, exit)),
  };
  return resultJob(record, message);
}

/** A first check of `step` in execution `executionId` of `record`. */
export function checkResult(
  record: InstructionRecord,
  executionId: string,
  task: string,
  step: string,
  satisfied: boolean,
) {
  const message: CheckResultMessage = {
    type: 'check_result',
    result_id: `c-${executionId}`,
    instruction_id: record.instruction_id,
    execution_id: executionId,
    task,
    step,
    satisfied,
    exit_code: satisfied ? 0 : 1,
    duration_ms: 2,
    output_tail: '',
  };
  return resultJob(record, message);
}

export function receipt(record: InstructionRecord, accepted: boolean, reason: string | null): ResultJob {
  const message: InstructionReceiptMessage = {
    type: 'instruction_receipt',
    instruction_id: record.instruction_id,
    accepted,
    reason,
  };
  return resultJob(record, message);
}
