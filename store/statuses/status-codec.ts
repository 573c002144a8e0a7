/**
 * Reading what the status store keeps in Redis: status and episode JSON back into values (by
 * hand where zod was the hot spot), and the field and member names it writes.
 */

import { ALERT_EVENTS, type AlertEvent } from '../../shared/alerts.js';
import { parseJsonWith } from '../../shared/parse-json.js';
import { type NewDriftEpisode, NewDriftEpisodeSchema, type TaskStatus } from '../../shared/status.js';
import { DRIFT_POLICIES, STEP_OUTCOMES } from '../../shared/types.js';
import type { AgentSnapshot } from './status-store.js';

export const markerField = (task: string, event: AlertEvent) => `${task}\0${event}`;
export const problemMember = (agent: string, task: string) => `${agent}\0${task}`;

/** Statuses and episodes from the two hashes' flat field, value lists. */
export function buildSnapshot(
  rawStatuses: readonly string[],
  rawDrift: readonly string[] | null,
): AgentSnapshot {
  const out: AgentSnapshot = { statuses: new Map(), episodes: new Map() };
  for (let i = 0; i + 1 < rawStatuses.length; i += 2) {
    const status = parseStatus(rawStatuses[i + 1]);
    if (status) out.statuses.set(rawStatuses[i] as string, status);
  }
  if (!rawDrift || rawDrift.length === 0) return out;
  const drift = new Map<string, string>();
  for (let i = 0; i + 1 < rawDrift.length; i += 2)
    drift.set(rawDrift[i] as string, rawDrift[i + 1] as string);
  for (const [field, raw] of drift) {
    if (field.includes('\0')) continue;
    const episode = parseEpisode(raw);
    if (!episode) continue;
    const alerts = ALERT_EVENTS.filter((e) => drift.get(markerField(field, e)) === episode.id);
    out.episodes.set(field, { ...episode, alerts });
  }
  return out;
}

/** The last status of each task, in first-seen order. */
export function lastPerTask(statuses: readonly TaskStatus[]): TaskStatus[] {
  const byTask = new Map<string, TaskStatus>();
  for (const status of statuses) byTask.set(status.task, status);
  return [...byTask.values()];
}

export function parseJson(raw: unknown): unknown {
  if (typeof raw !== 'string') return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

const OUTCOMES: ReadonlySet<string> = new Set(STEP_OUTCOMES);
const POLICIES: ReadonlySet<string> = new Set(DRIFT_POLICIES);
/** Without the optional issued_at and finished_at. */
const STATUS_FIELDS = 9;

function isStringArray(value: unknown): value is string[] {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

/**
 * TaskStatusSchema.safeParse, by hand: snapshots parse every status of an agent on each batch,
 * and zod's copying dominated that. Accepts and returns exactly what the schema does (unknown
 * keys stripped); test/store-statuses.test.ts holds the two to each other.
 */
export function toTaskStatus(value: unknown): TaskStatus | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const o = value as Record<string, unknown>;
  if (
    typeof o.task !== 'string' ||
    o.task.length === 0 ||
    typeof o.outcome !== 'string' ||
    !OUTCOMES.has(o.outcome) ||
    (o.mode !== 'check' && o.mode !== 'apply') ||
    typeof o.revision !== 'string' ||
    typeof o.execution_id !== 'string' ||
    o.execution_id.length === 0 ||
    typeof o.at !== 'string' ||
    !isStringArray(o.drifted_steps) ||
    !isStringArray(o.failed_steps) ||
    typeof o.policy !== 'string' ||
    !POLICIES.has(o.policy) ||
    (o.issued_at !== undefined && typeof o.issued_at !== 'string') ||
    (o.finished_at !== undefined && typeof o.finished_at !== 'string')
  )
    return null;
  let keys = 0;
  for (const key in o) if (Object.hasOwn(o, key)) keys++;
  const fields = STATUS_FIELDS + (o.issued_at === undefined ? 0 : 1) + (o.finished_at === undefined ? 0 : 1);
  if (keys === fields && Object.getPrototypeOf(o) === Object.prototype) return o as unknown as TaskStatus;
  return {
    task: o.task,
    outcome: o.outcome as TaskStatus['outcome'],
    mode: o.mode,
    revision: o.revision,
    execution_id: o.execution_id,
    at: o.at,
    drifted_steps: o.drifted_steps,
    failed_steps: o.failed_steps,
    policy: o.policy as TaskStatus['policy'],
    ...(o.issued_at === undefined ? {} : { issued_at: o.issued_at }),
    ...(o.finished_at === undefined ? {} : { finished_at: o.finished_at }),
  };
}

export function parseStatus(raw: unknown): TaskStatus | null {
  return toTaskStatus(parseJson(raw));
}

export function parseEpisode(raw: unknown): NewDriftEpisode | null {
  return parseJsonWith(NewDriftEpisodeSchema, raw);
}

export function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
