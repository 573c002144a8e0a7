/**
 * Fan out: turn "reconcile all / the agents of a task / one agent" and the periodic drift tick
 * into per-agent reconcile jobs. Work per agent is one job; nothing here waits on agents.
 */
import type { FanoutJob, ReconcileAgentJob } from '../../shared/jobs/payloads.js';
import { driftCheckDelay } from '../../shared/plan.js';
import { matches } from '../../shared/selector.js';
import type { CurrentState } from '../../store/desired-state/state-store.js';
import type { AgentEntry } from './reconcile-agent.js';

export interface AgentJob {
  data: ReconcileAgentJob;
  delayMs: number;
}

export interface FanoutDeps {
  listAgents(): Promise<AgentEntry[]>;
  agentNames(): Promise<string[]>;
  current(): Promise<CurrentState | null>;
  enqueueAgents(jobs: AgentJob[]): Promise<void>;
  setRunAgents(runId: string, agents: string[]): Promise<void>;
}

export async function fanoutHandler(data: FanoutJob, deps: FanoutDeps): Promise<{ agents: number }> {
  let targets: { name: string; tasks: string[] | null }[];
  if (data.agent) {
    targets = [{ name: data.agent, tasks: data.task ? [data.task] : null }];
  } else if (data.task) {
    const current = await deps.current();
    const task = current?.state.tasks.find((t) => t.name === data.task);
    const agents = task ? await deps.listAgents() : [];
    targets = agents
      .filter((a) => task && matches(a.labels, task.selector))
      .map((a) => ({ name: a.name, tasks: [data.task as string] }));
  } else {
    targets = (await deps.agentNames()).map((name) => ({ name, tasks: null }));
  }
  if (data.run_id)
    await deps.setRunAgents(
      data.run_id,
      targets.map((t) => t.name),
    );
  await deps.enqueueAgents(
    targets.map((t) => ({
      data: { agent: t.name, trigger: data.trigger, run_id: data.run_id, tasks: t.tasks, retry: 0 },
      delayMs: 0,
    })),
  );
  return { agents: targets.length };
}

/**
 * The periodic drift tick schedules the window [startMs, endMs) of wall-clock time: every agent
 * whose slot (a stable hash of its name within the poll interval) falls in it gets a drift check,
 * delayed to its exact slot so checks spread evenly instead of arriving in bursts. Each tick
 * starts where the previous one ended, so a late tick catches up instead of skipping agents.
 */
export interface DriftTickDeps {
  agentNames(): Promise<string[]>;
  enqueueAgents(jobs: AgentJob[]): Promise<void>;
  pollIntervalMs: number;
}

export async function driftTickHandler(
  startMs: number,
  endMs: number,
  nowMs: number,
  deps: DriftTickDeps,
): Promise<{ agents: number }> {
  const span = Math.min(endMs - startMs, deps.pollIntervalMs);
  if (span <= 0) return { agents: 0 };
  const jobs: AgentJob[] = [];
  for (const name of await deps.agentNames()) {
    const untilSlot = driftCheckDelay(name, deps.pollIntervalMs, startMs);
    if (untilSlot < span) {
      jobs.push({
        data: { agent: name, trigger: 'drift_check', run_id: null, tasks: null, retry: 0 },
        delayMs: Math.max(0, startMs + untilSlot - nowMs),
      });
    }
  }
  await deps.enqueueAgents(jobs);
  return { agents: jobs.length };
}
