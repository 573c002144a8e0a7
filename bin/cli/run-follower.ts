/**
 * Turns successive snapshots of a manual reconcile (`GET /api/v1/reconcile/{id}`) into the lines
 * `fluke reconcile` prints: one per (agent, task) as its result arrives, never twice, and one per
 * agent that could not run at all. Pure: snapshots in, lines out.
 */

import type { RunProgress } from './api-types.js';
import { EXIT, type ExitCode } from './cli-error.js';

/** Agent states that mean none of its tasks will report. */
const AGENT_SKIPS = new Set(['not_connected', 'undeliverable']);
const COLUMN_CAP = 40;

export class RunFollower {
  private readonly printed = new Set<string>();
  private agentWidth = 0;
  private taskWidth = 0;

  /** Lines for what arrived since the last snapshot. */
  next(p: RunProgress): string[] {
    for (const r of p.results) {
      this.agentWidth = Math.min(COLUMN_CAP, Math.max(this.agentWidth, r.agent.length));
      this.taskWidth = Math.min(COLUMN_CAP, Math.max(this.taskWidth, r.task.length));
    }
    for (const a of Object.keys(p.agents))
      this.agentWidth = Math.min(COLUMN_CAP, Math.max(this.agentWidth, a.length));
    const dispatched = new Map(p.executions.map((e) => [`${e.agent}\0${e.task}`, e.execution_id]));
    const lines: string[] = [];
    for (const r of p.results) {
      const key = `${r.agent}\0${r.task}`;
      if (r.outcome === 'pending' || this.printed.has(key)) continue;
      this.printed.add(key);
      lines.push(this.line(r.agent, r.task, r.outcome, r.execution_id ?? dispatched.get(key) ?? null));
    }
    const withResults = new Set(p.results.map((r) => r.agent));
    for (const [agent, state] of Object.entries(p.agents)) {
      const wanted = AGENT_SKIPS.has(state) || (state === 'no_tasks' && p.meta.target === 'agent');
      const key = `${agent}\0`;
      if (!wanted || withResults.has(agent) || this.printed.has(key)) continue;
      this.printed.add(key);
      lines.push(this.line(agent, '-', state, null));
    }
    return lines;
  }

  private line(agent: string, task: string, outcome: string, execution: string | null): string {
    return [agent.padEnd(this.agentWidth), task.padEnd(this.taskWidth), outcome.padEnd(13), execution ?? '-']
      .join('  ')
      .trimEnd();
  }
}

export function summaryLine(p: RunProgress): string {
  const s = p.summary;
  const parts = [
    `${s.succeeded} succeeded`,
    `${s.failed} failed`,
    `${s.skipped} skipped`,
    `${s.timed_out} timed out`,
  ];
  if (!p.done) parts.push(`${s.pending} pending`);
  const agents = `${s.targeted_agents} agent${s.targeted_agents === 1 ? '' : 's'}`;
  return `${p.done ? 'done' : 'not done'}: ${agents}, ${parts.join(', ')}`;
}

/** Non-zero when anything failed or timed out, or the run was not done when we stopped waiting. */
export function runExitCode(p: RunProgress): ExitCode {
  return !p.done || p.summary.failed > 0 || p.summary.timed_out > 0 ? EXIT.FAILURE : EXIT.OK;
}

/** What to POST for `all`, `agent NAME`, `task NAME`; a string is a usage error. */
export function reconcileTarget(args: readonly string[]): { target: string; name?: string } | string {
  const [target, name, extra] = args;
  if (target === undefined) return 'missing target: all, agent NAME or task NAME';
  if (target === 'all') return name === undefined ? { target } : `unexpected argument ${name}`;
  if (target !== 'agent' && target !== 'task')
    return `unknown target ${JSON.stringify(target)}: all, agent NAME or task NAME`;
  if (name === undefined || name === '') return `reconcile ${target} needs a NAME`;
  if (extra !== undefined) return `unexpected argument ${extra}`;
  return { target, name };
}
