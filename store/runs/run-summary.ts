/**
 * A run's fields (`meta`, `fanout`, `a:<agent>`, `p:<agent>\u0000<task>`, `x:<agent>\u0000<task>`)
 * turned into progress: the one reading of them, shared by both run stores.
 */
import type { AgentRunState, RunMeta, RunProgress } from './run-store.js';

const SUCCESS = new Set(['satisfied', 'applied']);
const FAILURE = new Set(['failed', 'unconverged', 'drifted']);

/** Pure: turn the run hash into progress and a summary. */
export function summarize(meta: RunMeta, raw: Record<string, string>): RunProgress {
  const agents: Record<string, AgentRunState> = {};
  const results: RunProgress['results'] = [];
  const executions: RunProgress['executions'] = [];
  const executionOf = new Map<string, string>();
  for (const [field, value] of Object.entries(raw)) {
    if (!field.startsWith('x:')) continue;
    executionOf.set(field.slice(2), value);
    const [agent = '', task = ''] = field.slice(2).split('\u0000');
    executions.push({ agent, task, execution_id: value });
  }
  const summary = { targeted_agents: 0, pending: 0, succeeded: 0, failed: 0, skipped: 0, timed_out: 0 };
  for (const [field, value] of Object.entries(raw)) {
    if (field.startsWith('a:')) {
      agents[field.slice(2)] = value as AgentRunState;
      summary.targeted_agents++;
      if (value === 'pending') summary.pending++;
      // An undeliverable agent's tasks are counted below, each with its outcome.
      else if (value === 'not_connected') summary.skipped++;
    } else if (field.startsWith('p:')) {
      const [agent = '', task = ''] = field.slice(2).split('\u0000');
      results.push({ agent, task, outcome: value, execution_id: executionOf.get(field.slice(2)) ?? null });
      if (value === 'pending') summary.pending++;
      else if (SUCCESS.has(value)) summary.succeeded++;
      else if (FAILURE.has(value)) summary.failed++;
      else if (value === 'timeout') summary.timed_out++;
      else summary.skipped++;
    }
  }
  const byAgentTask = (a: { agent: string; task: string }, b: { agent: string; task: string }) =>
    a.agent.localeCompare(b.agent) || a.task.localeCompare(b.task);
  results.sort(byAgentTask);
  executions.sort(byAgentTask);
  return {
    meta,
    done: raw.fanout === 'done' && summary.pending === 0,
    agents,
    results,
    executions,
    summary,
  };
}
