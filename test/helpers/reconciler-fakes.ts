/**
 * In-memory twins of the reconciler's Redis stores (instruction, run and state store), plus
 * builders for the literal data the handler tests feed in. The twins follow the Redis semantics
 * that test/reconciler-stores.test.ts checks against both backends; TTLs are modelled only as
 * "completed" marks, since no handler reads them.
 */
import pino from 'pino';
import type { ResultJob } from '../../shared/jobs/payloads.js';
import type { CompileDiagnostic } from '../../shared/manifest/compile.js';
import type {
  CheckResultMessage,
  InstructionReceiptMessage,
  StepResult,
  TaskResultMessage,
} from '../../shared/protocol.js';
import type { RegistryEntry } from '../../shared/registry-entry.js';
import type { DesiredState, Labels, StepOutcome, TaskOutcome } from '../../shared/types.js';
import type { CurrentState, SourceStatus, StateStore } from '../../store/desired-state/redis-state-store.js';
import type {
  InstructionRecord,
  InstructionStore,
} from '../../store/instructions/redis-instruction-store.js';
import {
  type AgentRunState,
  type RunMeta,
  type RunProgress,
  summarize,
} from '../../store/runs/redis-run-store.js';

export const silentLogger = pino({ level: 'silent' });

/** The InstructionStore's surface, so one suite can run against the twin and the Redis store. */
export type InstructionStorePort = Pick<InstructionStore, 'save' | 'get' | 'finishTask' | 'complete'>;

export class MemoryInstructionStore implements InstructionStorePort {
  private readonly records = new Map<string, { meta: string; fields: Map<string, string> }>();
  /** Instruction ids passed to `complete`, in call order (Redis: a short TTL). */
  readonly completed: string[] = [];

  async save(record: InstructionRecord): Promise<void> {
    // Like HSETNX: saving again (a re-run job) never resets what results already finished.
    const existing = this.records.get(record.instruction_id);
    const entry = existing ?? { meta: JSON.stringify(record), fields: new Map<string, string>() };
    for (const t of record.tasks) if (!entry.fields.has(t.task)) entry.fields.set(t.task, 'pending');
    this.records.set(record.instruction_id, entry);
  }

  async get(
    instructionId: string,
  ): Promise<{ record: InstructionRecord; pending: string[]; outcomes: Record<string, string> } | null> {
    const entry = this.records.get(instructionId);
    if (!entry) return null;
    const record = JSON.parse(entry.meta) as InstructionRecord;
    const pending = record.tasks.filter((t) => entry.fields.get(t.task) === 'pending').map((t) => t.task);
    const outcomes: Record<string, string> = {};
    for (const t of record.tasks) {
      const v = entry.fields.get(t.task);
      if (v !== undefined && v !== 'pending') outcomes[t.task] = v;
    }
    return { record, pending, outcomes };
  }

  async finishTask(instructionId: string, task: string, outcome: string): Promise<number> {
    const entry = this.records.get(instructionId);
    if (!entry) return 0;
    entry.fields.set(task, outcome);
    return [...entry.fields.values()].filter((v) => v === 'pending').length;
  }

  async complete(instructionId: string): Promise<void> {
    this.completed.push(instructionId);
  }

  /** What a task's field says (`pending` or its final outcome), for assertions. */
  taskState(instructionId: string, task: string): string | undefined {
    return this.records.get(instructionId)?.fields.get(task);
  }

  /** What the TTL ending does. */
  expire(instructionId: string): void {
    this.records.delete(instructionId);
  }
}

export interface RunStorePort {
  create(meta: RunMeta): Promise<void>;
  setAgents(id: string, agents: string[]): Promise<void>;
  setAgentState(
    id: string,
    agent: string,
    state: AgentRunState,
    tasks?: string[],
    executionIds?: string[],
  ): Promise<void>;
  setOutcome(id: string, agent: string, task: string, outcome: string): Promise<void>;
  get(id: string): Promise<RunProgress | null>;
}

/** Saves the record as the reconcile handler would, with run progress when it has a run. */
export async function dispatchRecord(
  instructions: Pick<InstructionStorePort, 'save'>,
  runs: RunStorePort,
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

export class MemoryRunStore implements RunStorePort {
  private readonly runs = new Map<string, Record<string, string>>();

  async create(meta: RunMeta): Promise<void> {
    this.runs.set(meta.id, { meta: JSON.stringify(meta), fanout: 'pending' });
  }

  async setAgents(id: string, agents: string[]): Promise<void> {
    const run = this.runs.get(id);
    if (!run) return;
    run.fanout = 'done';
    for (const a of agents) run[`a:${a}`] = 'pending';
  }

  async setAgentState(
    id: string,
    agent: string,
    state: AgentRunState,
    tasks: string[] = [],
    executionIds: string[] = [],
  ): Promise<void> {
    const run = this.runs.get(id);
    if (!run) return;
    run[`a:${agent}`] = state;
    tasks.forEach((t, i) => {
      run[`p:${agent}\u0000${t}`] ??= 'pending';
      const execution = executionIds[i];
      if (execution) run[`x:${agent}\u0000${t}`] = execution;
    });
  }

  async setOutcome(id: string, agent: string, task: string, outcome: string): Promise<void> {
    const run = this.runs.get(id);
    if (run) run[`p:${agent}\u0000${task}`] = outcome;
  }

  async get(id: string): Promise<RunProgress | null> {
    const run = this.runs.get(id);
    if (!run?.meta) return null;
    return summarize(JSON.parse(run.meta) as RunMeta, { ...run });
  }
}

const EMPTY_STATUS: SourceStatus = {
  revision: null,
  revision_at: null,
  last_poll_at: null,
  last_seen_revision: null,
  last_error: null,
  task_count: 0,
};

/** The twin of RedisStateStore: states by revision and the source status. */
export class MemoryStateStore implements StateStore {
  readonly states = new Map<string, string>();
  private source: SourceStatus = { ...EMPTY_STATUS };

  async status(): Promise<SourceStatus> {
    return structuredClone(this.source);
  }

  async current(): Promise<CurrentState | null> {
    const { revision } = this.source;
    const json = revision ? this.states.get(revision) : undefined;
    if (!revision || json === undefined) return null;
    return { revision, state: JSON.parse(json) as DesiredState };
  }

  async saveGood(revision: string, state: DesiredState, at: Date): Promise<void> {
    this.states.set(revision, JSON.stringify(state));
    this.source = {
      ...this.source,
      revision,
      revision_at: at.toISOString(),
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error: null,
      task_count: state.tasks.length,
    };
  }

  async recordError(
    revision: string | null,
    message: string,
    diagnostics: CompileDiagnostic[],
    at: Date,
  ): Promise<void> {
    this.source = {
      ...this.source,
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error: { revision, message, diagnostics: diagnostics.slice(0, 100), at: at.toISOString() },
    };
  }

  async recordPoll(revision: string, at: Date): Promise<void> {
    const last_error = this.source.revision === revision ? null : this.source.last_error;
    this.source = {
      ...this.source,
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error,
    };
  }
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
