/**
 * How the reconciler enqueues agent reconciles: agents alike (same trigger, run, task filter, and
 * due within the same second) share one `agents` job of up to AGENTS_PER_JOB; busy retries stay
 * single-agent `agent` jobs.
 */
import { agentJob, agentsJob } from '../shared/jobs/builders.js';
import type { JobSpec } from '../shared/jobs/options.js';
import { AGENTS_PER_JOB, type ReconcileAgentsJob } from '../shared/jobs/payloads.js';
import type { JobQueueHandle } from '../store/queues/queues.js';
import type { AgentJob } from './handlers/fanout.js';

/** Jobs per addBulk call. */
const ENQUEUE_BATCH = 1000;

export function groupAgentJobs(jobs: AgentJob[]): JobSpec<unknown>[] {
  const specs: JobSpec<unknown>[] = [];
  const groups = new Map<string, ReconcileAgentsJob>();
  for (const j of jobs) {
    if (j.data.retry > 0) {
      specs.push(agentJob(j.data, j.delayMs));
      continue;
    }
    const key = JSON.stringify([j.data.trigger, j.data.run_id, j.data.tasks, Math.floor(j.delayMs / 1000)]);
    let group = groups.get(key);
    if (!group || group.agents.length >= AGENTS_PER_JOB) {
      group = { agents: [], trigger: j.data.trigger, run_id: j.data.run_id, tasks: j.data.tasks };
      groups.set(key, group);
      // The group fills in after its spec is made: the spec holds the same array.
      specs.push(agentsJob(group, j.delayMs));
    }
    group.agents.push(j.data.agent);
  }
  return specs;
}

export function agentEnqueuer(queue: JobQueueHandle): (jobs: AgentJob[]) => Promise<void> {
  return async (jobs) => {
    const specs = groupAgentJobs(jobs);
    for (let i = 0; i < specs.length; i += ENQUEUE_BATCH) {
      await queue.addBulk(specs.slice(i, i + ENQUEUE_BATCH));
    }
  };
}
