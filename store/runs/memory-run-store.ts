/**
 * The in-process twin of RedisRunStore: the same fields in a plain record per run, read through
 * the same summarize(), under the same contract (test/store-runs.contract.ts). Runs never expire.
 */
import type { AgentRunState, RunMeta, RunProgress, RunStore } from './run-store.js';
import { summarize } from './run-summary.js';

export class MemoryRunStore implements RunStore {
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
    tasks: readonly string[] = [],
    executionIds: readonly string[] = [],
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
    await this.setOutcomes(id, [{ agent, task, outcome }]);
  }

  async setOutcomes(
    id: string,
    outcomes: ReadonlyArray<{ agent: string; task: string; outcome: string }>,
  ): Promise<void> {
    const run = this.runs.get(id);
    if (!run) return;
    for (const o of outcomes) run[`p:${o.agent}\u0000${o.task}`] = o.outcome;
  }

  async get(id: string): Promise<RunProgress | null> {
    const run = this.runs.get(id);
    if (!run?.meta) return null;
    return summarize(JSON.parse(run.meta) as RunMeta, { ...run });
  }
}
