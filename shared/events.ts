/**
 * The event model: what Fluke did on which host, kept for a short horizon (docs/events.md).
 * Events are operational history, never data of record: stores may drop them (TTL, per-agent
 * bound) and nothing may depend on them being there.
 *
 * Every event concerns one (agent, task). Kinds:
 * - task_run:      a task result came back (any outcome).
 * - timeout:       the agent did not answer an instruction in time.
 * - undeliverable: the instruction could not be handed to the agent (not connected, gateway gone).
 * - alert_failed:  an alert webhook gave up after its retries.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ALERT_EVENTS } from './alerts.js';
import { TRIGGERS, type Trigger } from './plan.js';
import { LabelsSchema, StepResultSchema, type TaskResultMessage } from './protocol.js';
import { DRIFT_POLICIES, type DriftPolicy, type Labels, type RunMode, STEP_OUTCOMES } from './types.js';

export const EVENT_KINDS = ['task_run', 'timeout', 'undeliverable', 'alert_failed'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** Output kept per step in an event; the agent caps its tail too, this bounds what is stored. */
export const MAX_EVENT_OUTPUT_CHARS = 4096;

// NUL separates fields in the stores' index members, so no id or name may carry one.
const noNul = (s: string) => !s.includes('\0');
const eventId = z.string().min(1).max(200).refine(noNul, 'must not contain NUL');
const name = z.string().min(1).max(253).refine(noNul, 'must not contain NUL');
const isoTime = z.iso.datetime({ offset: true });

const base = {
  id: eventId,
  /** When the reconciler recorded it; orders events. */
  at: isoTime,
  agent: name,
  labels: LabelsSchema,
  task: name,
  revision: z.string().max(64),
};

const run = {
  trigger: z.enum(TRIGGERS),
  mode: z.enum(['check', 'apply']),
  policy: z.enum(DRIFT_POLICIES),
  instruction_id: z.string().min(1),
  execution_id: z.string().min(1),
};

export const TaskRunEvent = z.object({
  kind: z.literal('task_run'),
  ...base,
  ...run,
  outcome: z.enum(STEP_OUTCOMES),
  /** Agent clock. */
  started_at: z.string(),
  finished_at: z.string(),
  duration_ms: z.number().nonnegative(),
  steps: z.array(StepResultSchema),
});
export type TaskRunEvent = z.infer<typeof TaskRunEvent>;

export const TimeoutEvent = z.object({
  kind: z.literal('timeout'),
  ...base,
  ...run,
  outcome: z.literal('timeout'),
  waited_ms: z.number().nonnegative(),
});
export type TimeoutEvent = z.infer<typeof TimeoutEvent>;

export const UndeliverableEvent = z.object({
  kind: z.literal('undeliverable'),
  ...base,
  ...run,
  reason: z.string().max(1000),
});
export type UndeliverableEvent = z.infer<typeof UndeliverableEvent>;

export const AlertFailedEvent = z.object({
  kind: z.literal('alert_failed'),
  ...base,
  alert_id: z.string().min(1),
  alert_event: z.enum(ALERT_EVENTS),
  attempts: z.number().int().nonnegative(),
  error: z.string().max(2000),
});
export type AlertFailedEvent = z.infer<typeof AlertFailedEvent>;

export const FlukeEvent = z.discriminatedUnion('kind', [
  TaskRunEvent,
  TimeoutEvent,
  UndeliverableEvent,
  AlertFailedEvent,
]);
export type FlukeEvent = z.infer<typeof FlukeEvent>;

/** A fresh time-sortable id (`<ms base36>-<random>`) for events with no natural id. */
export function newEventId(now: number = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
}

/**
 * The id of the event a result produces: derived from the execution so a redelivered result
 * (BullMQ is at-least-once) records the same id, which the stores keep once.
 */
export function eventIdFor(kind: Exclude<EventKind, 'alert_failed'>, executionId: string): string {
  return `${kind}:${executionId}`;
}

/**
 * A periodic drift check that finds exactly what the last run at the same revision found is a
 * quiet check: satisfied again, or drifted again in the same steps with nothing applied (an
 * `alert_only` task waiting for a manual reconcile). It updates the status (its `at` says when
 * the task was last checked) but records no event. Otherwise every host would write one event
 * per task per `poll_interval` and push the changes, applies and failures operators look for out
 * of each agent's bounded history. Every other run is recorded: a change of outcome, steps or
 * revision, any apply, failure or timeout, and every commit, connect and manual run.
 */
export function isQuietCheck(
  previous: { outcome: string; revision: string; drifted_steps: readonly string[] } | null,
  run: { trigger: Trigger; revision: string; outcome: string; drifted_steps: readonly string[] },
): boolean {
  if (run.trigger !== 'drift_check' || previous === null) return false;
  if (previous.revision !== run.revision || previous.outcome !== run.outcome) return false;
  if (run.outcome === 'satisfied') return true;
  return (
    run.outcome === 'drifted' &&
    previous.drifted_steps.length === run.drifted_steps.length &&
    previous.drifted_steps.every((step, i) => run.drifted_steps[i] === step)
  );
}

function tail(text: string, max = MAX_EVENT_OUTPUT_CHARS): string {
  return text.length <= max ? text : text.slice(text.length - max);
}

export interface RunContext {
  agent: string;
  labels: Labels;
  revision: string;
  trigger: Trigger;
  policy: DriftPolicy;
  instruction_id: string;
  /** When the reconciler records the event. */
  at: Date;
}

/** The fields every run-derived event shares, for one planned task of an instruction. */
function runFields(run: { task: string; execution_id: string; mode: RunMode }, ctx: RunContext) {
  return {
    at: ctx.at.toISOString(),
    agent: ctx.agent,
    labels: { ...ctx.labels },
    task: run.task,
    revision: ctx.revision,
    trigger: ctx.trigger,
    mode: run.mode,
    policy: ctx.policy,
    instruction_id: ctx.instruction_id,
    execution_id: run.execution_id,
  };
}

export function taskRunEvent(result: TaskResultMessage, ctx: RunContext): TaskRunEvent {
  return {
    kind: 'task_run',
    id: eventIdFor('task_run', result.execution_id),
    ...runFields(result, ctx),
    instruction_id: result.instruction_id,
    outcome: result.outcome,
    started_at: result.started_at,
    finished_at: result.finished_at,
    duration_ms: result.duration_ms,
    steps: result.steps.map((s) => ({ ...s, output_tail: tail(s.output_tail) })),
  };
}

export function timeoutEvent(
  run: { task: string; execution_id: string; mode: RunMode; waited_ms: number },
  ctx: RunContext,
): TimeoutEvent {
  return {
    kind: 'timeout',
    id: eventIdFor('timeout', run.execution_id),
    ...runFields(run, ctx),
    outcome: 'timeout',
    waited_ms: run.waited_ms,
  };
}

export function undeliverableEvent(
  run: { task: string; execution_id: string; mode: RunMode; reason: string },
  ctx: RunContext,
): UndeliverableEvent {
  return {
    kind: 'undeliverable',
    id: eventIdFor('undeliverable', run.execution_id),
    ...runFields(run, ctx),
    reason: tail(run.reason, 1000),
  };
}

// ---- ordering and cursors, shared by every store so all backends page identically ----------

const AT_DIGITS = 15;

/**
 * Orders events: time, then agent, then id. Redis keeps these as members of score-0 sorted sets,
 * where lexicographic order is byte order, which is why this is a string and not a tuple.
 */
export function eventSortKey(event: Pick<FlukeEvent, 'at' | 'agent' | 'id'>): string {
  const ms = Date.parse(event.at);
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`event ${event.id}: invalid time ${event.at}`);
  return `${String(ms).padStart(AT_DIGITS, '0')}\0${event.agent}\0${event.id}`;
}

/** The smallest sort key at or after `ms`: index members below it are older than `ms`. */
export function sortKeyFloor(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(AT_DIGITS, '0');
}

export function parseSortKey(key: string): { ms: number; agent: string; id: string } | null {
  if (key.length < AT_DIGITS + 4 || key[AT_DIGITS] !== '\0' || !/^\d+$/.test(key.slice(0, AT_DIGITS)))
    return null;
  const rest = key.slice(AT_DIGITS + 1);
  const cut = rest.lastIndexOf('\0');
  if (cut <= 0 || cut === rest.length - 1) return null;
  return { ms: Number(key.slice(0, AT_DIGITS)), agent: rest.slice(0, cut), id: rest.slice(cut + 1) };
}

/** Byte order, as Redis compares members; JS `<` compares UTF-16 units, which differs past U+FFFF. */
export function compareSortKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class InvalidCursorError extends Error {
  readonly code = 'invalid_cursor';
  constructor() {
    super('invalid cursor');
    this.name = 'InvalidCursorError';
  }
}

/** Cursors are opaque to clients: the sort key of the last event of the previous page. */
export function encodeCursor(sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (parseSortKey(key) === null) throw new InvalidCursorError();
  return key;
}

export interface EventQuery {
  agent?: string;
  task?: string;
  /** Clamped to [1, MAX_QUERY_LIMIT]. */
  limit: number;
  /** `next_cursor` of the previous page. */
  before?: string | null;
}

export interface EventPage {
  /** Newest first. */
  events: FlukeEvent[];
  /** Null when there is nothing older. */
  next_cursor: string | null;
}

export const MAX_QUERY_LIMIT = 1000;

export function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return 20;
  return Math.min(MAX_QUERY_LIMIT, Math.max(1, Math.floor(limit)));
}
