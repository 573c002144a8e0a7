/**
 * The results rulebook: what one agent message, an undeliverable instruction or a passed deadline
 * does, decided against the instruction record, the task's last status and its open drift
 * episode. Pure. The reconciler's single-message handler and its batched path both decide here
 * and differ only in how they apply the effects (docs/events.md, "Applying a verdict"): record
 * the events, open the episode, enqueue then claim each alert, close the episode, write the
 * status, then the run progress and the finished task.
 *
 * Over 300 lines because it is one rulebook: every rule decides against the same Facts and
 * returns the same Decision shapes, and the rules are checked against each other (which message
 * wins, when an episode opens or closes); split apart they would have to be read side by side.
 */
import {
  type FlukeEvent,
  isQuietCheck,
  type RunContext,
  taskRunEvent,
  timeoutEvent,
  undeliverableEvent,
} from './events.js';
import { driftedSteps, judge, type Observation, type Verdict } from './judge.js';
import type { PlannedTask, Trigger } from './plan.js';
import type {
  CheckResultMessage,
  InstructionReceiptMessage,
  StepResultMessage,
  TaskResultMessage,
} from './protocol.js';
import { refusalCode } from './refusal-code.js';
import type { DriftEpisode, TaskStatus } from './status.js';
import type { Labels } from './types.js';

/** A busy agent is asked again this often, this many times, before the run gives up on it. */
export const BUSY_RETRY_MS = 2000;
export const BUSY_RETRIES = 150;

/** The instruction as the reconciler planned and stored it (InstructionRecord fits). */
export interface PlannedRecord {
  instruction_id: string;
  agent: string;
  trigger: Trigger;
  run_id: string | null;
  revision: string;
  /** ISO time the instruction was created: the statuses it leads to carry it as `issued_at`. */
  created_at?: string;
  /** How often this reconcile was already put back because the agent was busy. */
  retry: number;
  tasks: readonly PlannedTask[];
}

/** A stored instruction: its record and the tasks not finished yet. */
export interface FoundInstruction {
  record: PlannedRecord;
  pending: readonly string[];
}

/** What gateways forward from agents. */
export type AgentResultMessage =
  | InstructionReceiptMessage
  | StepResultMessage
  | CheckResultMessage
  | TaskResultMessage;

/** What the rules know besides the message and the record. */
export interface Facts {
  /** The judged task's last status and open episode (judgedTask says which task). */
  previous: TaskStatus | null;
  episode: DriftEpisode | null;
  /** The agent's labels, null until read: effects that carry them (events, alerts) ask first. */
  labels: Labels | null;
  now: Date;
  /** now, as ISO text. */
  nowIso: string;
}

/** The answer when the effects would carry the agent's labels and Facts has none: read, ask again. */
export const NEED_LABELS = 0;

/** One task judged: a check_result, a task_result or a timeout. */
export interface TaskEffects {
  kind: 'task';
  record: PlannedRecord;
  /** What the job reports. */
  outcome: string;
  task: string;
  /** Recorded first (its id comes from the execution: recording it again changes nothing). */
  event: FlukeEvent | null;
  /** Applied when not `ignored`: episode opened, alerts enqueued then claimed, closed, status. */
  verdict: Verdict;
  /** After the status: the run's progress, then the instruction's task. Null: still running. */
  finish: string | null;
}

/** A whole instruction settled without judging: busy, refused or undeliverable. */
export interface InstructionEffects {
  kind: 'instruction';
  record: PlannedRecord;
  outcome: 'busy' | 'busy_skipped' | 'refused' | 'undeliverable';
  /** First, for a busy agent: the same reconcile again (a new job id, so a new instruction). */
  retry: BusyRetry | null;
  /** A refusal's reason, to log as a warning. */
  refused: string | null;
  /** Each finished with `finish`, after events[i] when there are events. */
  tasks: readonly string[];
  events: readonly FlukeEvent[];
  finish: 'requeued' | 'undeliverable';
  /**
   * An undeliverable task counts in the run and completes the instruction with its last task;
   * requeued ones do neither (the retry carries the run on) and the instruction is completed.
   */
  progress: boolean;
}

/** ReconcileAgentJob's fields (reconciler/jobs.ts), which shared/ may not import. */
export interface BusyRetry {
  agent: string;
  trigger: Trigger;
  run_id: string | null;
  tasks: string[];
  retry: number;
  delayMs: number;
}

/** An outcome alone (nothing to write), effects, or NEED_LABELS. */
export type Decision = string | TaskEffects | InstructionEffects | typeof NEED_LABELS;

const NO_LABELS: Labels = Object.freeze({}) as Labels;

function plannedTask(record: PlannedRecord, task: string): PlannedTask | undefined {
  return record.tasks.find((t) => t.task === task);
}

/** The task whose status and episode decide(message) reads from Facts; null: none. */
export function judgedTask(message: AgentResultMessage, record: PlannedRecord): string | null {
  if (message.type !== 'check_result' && message.type !== 'task_result') return null;
  return plannedTask(record, message.task) ? message.task : null;
}

/** What one forwarded message does. `found` null: the instruction is finished or expired. */
export function decide(message: AgentResultMessage, found: FoundInstruction | null, facts: Facts): Decision {
  // A redelivered job whose instruction was finished and removed, or an expired one.
  if (!found) return 'unknown_instruction';
  const record = found.record;
  switch (message.type) {
    case 'instruction_receipt':
      return receiptRule(message, found, facts);
    case 'step_result':
      return 'progress';
    case 'check_result': {
      const planned = plannedTask(record, message.task);
      if (!planned) return 'unknown_task';
      // The message is the observation (CheckObservation fits).
      const verdict = judgeWith(record, planned, facts, message);
      if (verdict === NEED_LABELS) return NEED_LABELS;
      return taskEffects(record, 'check', planned.task, null, verdict, null);
    }
    case 'task_result':
      return taskResultRule(message, record, facts);
  }
}

function taskResultRule(message: TaskResultMessage, record: PlannedRecord, facts: Facts): Decision {
  const planned = plannedTask(record, message.task);
  if (!planned) return 'unknown_task';
  const drifted = driftedSteps(message.steps);
  // A drift check that finds what the last one found updates the status but records no event.
  const quiet = isQuietCheck(facts.previous, {
    trigger: record.trigger,
    revision: record.revision,
    outcome: message.outcome,
    drifted_steps: drifted,
  });
  if (!quiet && facts.labels === null) return NEED_LABELS;
  const verdict = judgeWith(record, planned, facts, message, drifted);
  if (verdict === NEED_LABELS) return NEED_LABELS;
  const event = quiet ? null : taskRunEvent(message, context(record, planned, facts));
  // Finished even when judged already: a redelivered result finishes what a crash left pending.
  return taskEffects(record, message.outcome, planned.task, event, verdict, message.outcome);
}

/**
 * The deadline passed with no result for this planned task: it becomes a `timeout`, unless a
 * status from an instruction issued after `since` (timeoutSince) is in.
 */
export function timeoutRule(
  record: PlannedRecord,
  planned: PlannedTask,
  waitedMs: number,
  facts: Facts,
  since?: string,
): TaskEffects | typeof NEED_LABELS {
  const observation = {
    type: 'timeout' as const,
    execution_id: planned.execution_id,
    ...(since ? { since } : {}),
  };
  const verdict = judgeWith(record, planned, facts, observation);
  if (verdict === NEED_LABELS) return NEED_LABELS;
  // Superseded (a result of this execution, or of a later instruction, is in): no event either,
  // it would say "timed out" next to a newer result. The task still finishes as a timeout.
  if (verdict.ignored !== null)
    return taskEffects(record, 'superseded', planned.task, null, verdict, 'timeout');
  if (facts.labels === null) return NEED_LABELS;
  const event = timeoutEvent({ ...planned, waited_ms: waitedMs }, context(record, planned, facts));
  return taskEffects(record, 'timeout', planned.task, event, verdict, 'timeout');
}

/**
 * Since when a newer status supersedes a timeout: the instruction's creation, or, when the agent
 * is now connected on another session than the one the instruction was sent to (a gateway died,
 * a stale registry read routed it to the old one), that session's start if earlier: the agent
 * never got the instruction there, and what its current session reported is newer. A hung
 * execution keeps its session (or the agent says it is busy with it), so it still times out.
 */
export function timeoutSince(
  record: { created_at?: string; session_id?: string },
  current: { session_id: string; connected_at: number } | null,
): string | undefined {
  if (!record.created_at || !current || !record.session_id || current.session_id === record.session_id)
    return record.created_at;
  const created = Date.parse(record.created_at);
  return current.connected_at < created ? new Date(current.connected_at).toISOString() : record.created_at;
}

/** The instruction could not be delivered: each pending task is `undeliverable`. */
export function undeliverableRule(
  found: FoundInstruction,
  reason: string,
  facts: Facts,
): InstructionEffects | typeof NEED_LABELS {
  return settleUndeliverable(found, 'undeliverable', reason, null, facts);
}

function receiptRule(message: InstructionReceiptMessage, found: FoundInstruction, facts: Facts): Decision {
  if (message.accepted) return 'accepted';
  const code = refusalCode(message);
  // The agent has (or had) the instruction: the first delivery's results will come.
  if (code === 'duplicate') return 'duplicate';
  const { record, pending } = found;
  // The agent is applying that task right now: its result will say more than this check.
  if (code === 'busy' && record.trigger === 'drift_check')
    return requeue('busy_skipped', record, pending, null);
  if (code === 'busy' && record.retry < BUSY_RETRIES) {
    // A redelivered receipt: its tasks were re-queued already, and one retry is enough.
    if (pending.length === 0) return 'busy';
    // Same agent, same run, same task filter; a new job id makes a new instruction id.
    const retry: BusyRetry = {
      agent: record.agent,
      trigger: record.trigger,
      run_id: record.run_id,
      tasks: record.tasks.map((t) => t.task),
      retry: record.retry + 1,
      delayMs: BUSY_RETRY_MS,
    };
    return requeue('busy', record, pending, retry);
  }
  const reason = message.reason ?? '';
  return settleUndeliverable(found, 'refused', `refused: ${reason}`, reason, facts);
}

function requeue(
  outcome: 'busy' | 'busy_skipped',
  record: PlannedRecord,
  pending: readonly string[],
  retry: BusyRetry | null,
): InstructionEffects {
  return {
    kind: 'instruction',
    record,
    outcome,
    retry,
    refused: null,
    // A copy: whoever applies this changes the pending list as it goes.
    tasks: pending.slice(),
    events: [],
    finish: 'requeued',
    progress: false,
  };
}

function settleUndeliverable(
  found: FoundInstruction,
  outcome: 'refused' | 'undeliverable',
  reason: string,
  refused: string | null,
  facts: Facts,
): InstructionEffects | typeof NEED_LABELS {
  const { record, pending } = found;
  const planned = record.tasks.filter((t) => pending.includes(t.task));
  if (planned.length > 0 && facts.labels === null) return NEED_LABELS;
  return {
    kind: 'instruction',
    record,
    outcome,
    retry: null,
    refused,
    tasks: planned.map((p) => p.task),
    events: planned.map((p) => undeliverableEvent({ ...p, reason }, context(record, p, facts))),
    finish: 'undeliverable',
    progress: true,
  };
}

/** The judge's verdict; NEED_LABELS when it alerts and the labels are not read yet. */
function judgeWith(
  record: PlannedRecord,
  planned: PlannedTask,
  facts: Facts,
  observation: Observation,
  drifted?: string[],
): Verdict | typeof NEED_LABELS {
  const verdict = judge(
    {
      // Labels appear only in alert payloads: judged without them until an alert needs them.
      agent: { name: record.agent, labels: facts.labels ?? NO_LABELS },
      task: planned.task,
      policy: planned.policy,
      mode: planned.mode,
      revision: record.revision,
      issued: record.created_at,
      now: facts.nowIso,
      previous: facts.previous,
      episode: facts.episode,
      observation,
    },
    drifted,
  );
  return verdict.alerts.length > 0 && facts.labels === null ? NEED_LABELS : verdict;
}

function taskEffects(
  record: PlannedRecord,
  outcome: string,
  task: string,
  event: FlukeEvent | null,
  verdict: Verdict,
  finish: string | null,
): TaskEffects {
  return { kind: 'task', record, outcome, task, event, verdict, finish };
}

function context(record: PlannedRecord, planned: PlannedTask, facts: Facts): RunContext {
  return {
    agent: record.agent,
    labels: facts.labels ?? NO_LABELS,
    revision: record.revision,
    trigger: record.trigger,
    policy: planned.policy,
    instruction_id: record.instruction_id,
    at: facts.now,
  };
}

/**
 * A verdict a batch may apply in memory: no alert, and no episode change. A verdict that opens an
 * episode and closes that same one (a first `applied` with nothing to alert) leaves the store as
 * it was, and counts as no change.
 */
export function changesNoEpisode(verdict: Verdict): boolean {
  if (verdict.ignored !== null) return true;
  if (verdict.alerts.length > 0) return false;
  if (verdict.openEpisode === null) return verdict.closeEpisode === null;
  return verdict.closeEpisode === verdict.openEpisode.id;
}
