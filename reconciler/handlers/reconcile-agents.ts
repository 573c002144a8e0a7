/**
 * Many agents in one job (fan-out of a commit, a manual run, a drift check): the registry entries
 * and the desired state are read once for the chunk, each agent is planned and sent as the
 * single-agent handler does, side by side, and one `deadlines` job covers every instruction of
 * the chunk. Instruction ids come from the job and the agent's place in it, so a retried job
 * re-sends the same ids and agents refuse to run them twice.
 */

import type { DeadlineJob, DeadlinesJob, ReconcileAgentsJob } from '../../shared/jobs/payloads.js';
import type { CurrentState } from '../../store/desired-state/state-store.js';
import type { DeadlineDeps, DeadlineOutcome } from './deadline.js';
import { deadlineHandler } from './deadline.js';
import {
  type AgentEntry,
  type ReconcileAgentDeps,
  type ReconcileAgentOutcome,
  reconcileAgentHandler,
} from './reconcile-agent.js';

/** Agents of one `agents` job planned and sent side by side; the next slice starts after. */
export const AGENTS_IN_FLIGHT = 50;

export interface ReconcileAgentsDeps extends Omit<ReconcileAgentDeps, 'scheduleDeadline' | 'getAgent'> {
  /** Registry entries of many agents (null: not connected), in the order asked. */
  getAgents(names: readonly string[]): Promise<Array<AgentEntry | null>>;
  /** One job checking the deadlines of all these instructions. */
  scheduleDeadlines(instructionIds: string[]): Promise<void>;
}

export async function reconcileAgentsHandler(
  data: ReconcileAgentsJob,
  instructionIdOf: (agent: string, index: number) => string,
  deps: ReconcileAgentsDeps,
): Promise<Record<string, number>> {
  const [entries, current] = await Promise.all([deps.getAgents(data.agents), deps.current()]);
  const byName = new Map<string, AgentEntry | null>();
  data.agents.forEach((name, i) => {
    byName.set(name, entries[i] ?? null);
  });
  const currentOnce: Promise<CurrentState | null> = Promise.resolve(current);
  const deadlines: string[] = [];
  const agentDeps: ReconcileAgentDeps = {
    ...deps,
    getAgent: async (name) => byName.get(name) ?? null,
    current: () => currentOnce,
    scheduleDeadline: async (id) => {
      deadlines.push(id);
    },
    logger: deps.logger,
  };
  const settled: Array<PromiseSettledResult<ReconcileAgentOutcome>> = [];
  // A slice at a time: every agent of every concurrent job in flight at once kept all their
  // plans and records alive together (young-generation GC copied them again and again), and the
  // first agents' instructions waited for the last ones' round trips.
  for (let start = 0; start < data.agents.length; start += AGENTS_IN_FLIGHT) {
    const slice = data.agents.slice(start, start + AGENTS_IN_FLIGHT);
    settled.push(
      ...(await Promise.allSettled(
        slice.map(
          (agent, i): Promise<ReconcileAgentOutcome> =>
            reconcileAgentHandler(
              { agent, trigger: data.trigger, run_id: data.run_id, tasks: data.tasks, retry: 0 },
              instructionIdOf(agent, start + i),
              agentDeps,
            ),
        ),
      )),
    );
  }
  // Even when some agents failed: the instructions that went out must be able to time out.
  if (deadlines.length > 0) await deps.scheduleDeadlines(deadlines);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const counts: Record<string, number> = {};
  for (const s of settled) {
    if (s.status === 'fulfilled') counts[s.value.kind] = (counts[s.value.kind] ?? 0) + 1;
  }
  return counts;
}

/** Deadlines of many instructions: each checked as `deadline` does; the waiting ones go on together. */
export async function deadlinesHandler(
  data: DeadlinesJob,
  deps: Omit<DeadlineDeps, 'reschedule'> & {
    rescheduleAll(checks: DeadlineJob[], delayMs: number): Promise<void>;
  },
): Promise<Record<DeadlineOutcome, number>> {
  const again: DeadlineJob[] = [];
  const settled = await Promise.allSettled(
    data.checks.map((check) =>
      deadlineHandler(check, {
        ...deps,
        reschedule: async (next) => {
          again.push(next);
        },
      }),
    ),
  );
  if (again.length > 0) await deps.rescheduleAll(again, deps.checkEveryMs);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const counts: Record<DeadlineOutcome, number> = { finished: 0, waiting: 0, timed_out: 0 };
  for (const s of settled) if (s.status === 'fulfilled') counts[s.value] += 1;
  return counts;
}
