/** Small pure formatters shared by the table views. */

import type { Selector } from '../../shared/types.js';
import type { DriftSummary, FlukeEvent } from './api-types.js';
import type { Cell } from './render-table.js';

/** "12s ago", "5m ago", "3h ago", "2d ago"; "-" for no time. */
export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function labelsText(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** "2/3 ok, 1 drifted" — only the non-zero parts after the ok count. */
export function driftText(d: DriftSummary): string {
  if (d.tasks === 0) return 'no tasks';
  const parts = [`${d.ok}/${d.tasks} ok`];
  if (d.drifted) parts.push(`${d.drifted} drifted`);
  if (d.failing) parts.push(`${d.failing} failing`);
  if (d.unknown) parts.push(`${d.unknown} unknown`);
  return parts.join(', ');
}

const OUTCOME_ORDER = [
  'satisfied',
  'applied',
  'drifted',
  'unconverged',
  'failed',
  'timeout',
  'skipped',
  'unknown',
];

/** "satisfied=2 drifted=1", in a fixed order (good first), unknown outcomes last by name. */
export function countsText(counts: Record<string, number>): string {
  const rank = (k: string) => {
    const i = OUTCOME_ORDER.indexOf(k);
    return i < 0 ? OUTCOME_ORDER.length : i;
  };
  const keys = Object.keys(counts)
    .filter((k) => (counts[k] ?? 0) > 0)
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return keys.map((k) => `${k}=${counts[k]}`).join(' ');
}

/** `role=web, zone In (a, b), canary DoesNotExist`, or "(every agent)" for an empty selector. */
export function selectorText(s: Selector): string {
  const parts = [
    ...Object.keys(s.match_labels)
      .sort()
      .map((k) => `${k}=${s.match_labels[k]}`),
    ...s.match_expressions.map((e) =>
      e.values ? `${e.key} ${e.operator} (${e.values.join(', ')})` : `${e.key} ${e.operator}`,
    ),
  ];
  return parts.length === 0 ? '(every agent)' : parts.join(', ');
}

/** What an event came to, in one word, whatever its kind. */
export function eventOutcome(e: FlukeEvent): string {
  switch (e.kind) {
    case 'task_run':
    case 'timeout':
      return e.outcome;
    case 'undeliverable':
      return 'undeliverable';
    case 'alert_failed':
      return 'alert_failed';
  }
}

/** The one detail worth a table column: duration, reason, or the failed alert's error. */
export function eventDetail(e: FlukeEvent): string {
  switch (e.kind) {
    case 'task_run': {
      const bad = e.steps.filter((s) => s.outcome !== 'satisfied' && s.outcome !== 'applied');
      const steps = bad.map((s) => `${s.step}=${s.outcome}`).join(' ');
      return `${e.duration_ms}ms${steps ? ` ${steps}` : ''}`;
    }
    case 'timeout':
      return `no answer in ${Math.round(e.waited_ms / 1000)}s`;
    case 'undeliverable':
      return e.reason;
    case 'alert_failed':
      return `${e.alert_event} after ${e.attempts} attempts: ${e.error}`;
  }
}

export function executionOf(e: FlukeEvent): string | null {
  return e.kind === 'alert_failed' ? null : e.execution_id;
}

/** Event table columns; `get events` adds the agent after the age, `describe agent` does not. */
export function eventColumns(withAgent: boolean): string[] {
  return [
    'age',
    ...(withAgent ? ['agent'] : []),
    'task',
    'kind',
    'outcome',
    'trigger',
    'execution',
    'detail',
  ];
}

export function eventRow(e: FlukeEvent, now: number, withAgent: boolean): Cell[] {
  return [
    ago(e.at, now),
    ...(withAgent ? [e.agent] : []),
    e.task,
    e.kind,
    eventOutcome(e),
    eventTrigger(e),
    executionOf(e),
    eventDetail(e),
  ];
}

export function eventTrigger(e: FlukeEvent): string | null {
  return e.kind === 'alert_failed' ? null : e.trigger;
}

/** One line of live output: `[step/phase] text`, with `stderr` marked. */
/**
 * Host output made safe for a terminal: escape sequences (colours, cursor moves, OSC titles and
 * links) removed, other control characters shown as `?`. A line from a managed host must not be
 * able to rewrite the operator's terminal. `-o json` prints output as it came (JSON escapes it).
 */
export function terminalSafe(text: string): string {
  // biome-ignore-start lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return text
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]/g, '')
    .replace(/\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?/g, '')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
  // biome-ignore-end lint/suspicious/noControlCharactersInRegex: -
}

export function outputLine(r: { step: string; phase: string; stream: string; line: string }): string {
  const text = terminalSafe(r.line.endsWith('\n') ? r.line.slice(0, -1) : r.line);
  return `[${r.step}/${r.phase}${r.stream === 'stderr' ? ' stderr' : ''}] ${text}`;
}

/** Outcomes that count as success for an execution's exit code. */
export function isSuccess(outcome: string | null | undefined): boolean {
  return outcome === 'satisfied' || outcome === 'applied';
}
