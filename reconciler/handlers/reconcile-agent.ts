/**
 * Reconcile one agent: its tasks (labels × selectors), the mode per task from the drift policy
 * and the trigger, one instruction sent to the gateway that holds it, and a deadline to turn
 * silence into `timeout`. The instruction id comes from the job, so a retried job re-sends the
 * same id and the agent refuses to run it twice.
 */
import type { Logger } from 'pino';
import type { ReconcileAgentJob } from '../../shared/jobs/payloads.js';
import { buildInstruction, tasksForAgent } from '../../shared/plan.js';
import type { RunMessage } from '../../shared/protocol.js';
import type { RegistryEntry } from '../../shared/registry-entry.js';
import type { DriftPolicy } from '../../shared/types.js';
import type { CurrentState } from '../../store/desired-state/state-store.js';
import type { InstructionRecord } from '../../store/instructions/instruction-store.js';
import type { AgentRunState } from '../../store/runs/run-store.js';

export type AgentEntry = RegistryEntry;

export interface ReconcileAgentDeps {
  getAgent(name: string): Promise<AgentEntry | null>;
  current(): Promise<CurrentState | null>;
  defaultPolicy: DriftPolicy;
  send(entry: AgentEntry, message: RunMessage): Promise<'delivered' | 'undeliverable'>;
  saveInstruction(record: InstructionRecord): Promise<void>;
  scheduleDeadline(instructionId: string): Promise<void>;
  /** `executionIds[i]` is the execution of `tasks[i]` (dispatched tasks). */
  runState(
    runId: string,
    agent: string,
    state: AgentRunState,
    tasks?: string[],
    executionIds?: string[],
  ): Promise<void>;
  /** Forget statuses of every task of the agent not in `keep`. */
  forgetTasks(agent: string, keep: string[]): Promise<unknown>;
  logger: Logger;
  now?: () => Date;
}

export type ReconcileAgentOutcome =
  | { kind: 'not_connected' }
  | { kind: 'no_state' }
  | { kind: 'no_tasks' }
  | { kind: 'undeliverable'; instruction_id: string }
  | { kind: 'dispatched'; instruction_id: string; tasks: string[] };

export async function reconcileAgentHandler(
  data: ReconcileAgentJob,
  instructionId: string,
  deps: ReconcileAgentDeps,
): Promise<ReconcileAgentOutcome> {
  const now = deps.now ?? (() => new Date());
  const mark = async (state: AgentRunState, tasks?: string[], executionIds?: string[]) => {
    if (data.run_id) await deps.runState(data.run_id, data.agent, state, tasks, executionIds);
  };
  const entry = await deps.getAgent(data.agent);
  if (!entry) {
    await mark('not_connected');
    return { kind: 'not_connected' };
  }
  const current = await deps.current();
  if (!current) {
    await mark('no_tasks');
    return { kind: 'no_state' };
  }
  let tasks = tasksForAgent(entry.labels, current.state);
  // A full reconcile knows every task the agent should have: drop statuses of the others (removed
  // from Git, or no longer matching its labels) so they leave /drift instead of lingering.
  if (!data.tasks) {
    await deps.forgetTasks(
      entry.name,
      tasks.map((t) => t.name),
    );
  }
  if (data.tasks) {
    const wanted = new Set(data.tasks);
    tasks = tasks.filter((t) => wanted.has(t.name));
  }
  if (tasks.length === 0) {
    await mark('no_tasks');
    return { kind: 'no_tasks' };
  }
  const { message, tasks: planned } = buildInstruction({
    agent: entry.name,
    tasks,
    revision: current.revision,
    trigger: data.trigger,
    serverDefault: deps.defaultPolicy,
    ids: { instruction: instructionId },
  });
  const record: InstructionRecord = {
    instruction_id: instructionId,
    agent: entry.name,
    session_id: entry.session_id,
    trigger: data.trigger,
    run_id: data.run_id,
    revision: current.revision,
    created_at: now().toISOString(),
    retry: data.retry,
    tasks: planned,
  };
  // Record before sending: results may arrive before `send` returns.
  await deps.saveInstruction(record);
  await mark(
    'dispatched',
    planned.map((p) => p.task),
    planned.map((p) => p.execution_id),
  );
  const delivery = await deps.send(entry, message);
  // The deadline also covers an undeliverable send that the gateway reports back asynchronously.
  await deps.scheduleDeadline(instructionId);
  if (delivery === 'undeliverable') {
    await mark('undeliverable');
    deps.logger.warn({ agent: entry.name, instruction_id: instructionId }, 'instruction undeliverable');
    return { kind: 'undeliverable', instruction_id: instructionId };
  }
  return { kind: 'dispatched', instruction_id: instructionId, tasks: planned.map((p) => p.task) };
}
