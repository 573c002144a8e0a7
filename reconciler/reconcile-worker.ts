/**
 * The reconcile queue's worker: each job name parsed with its schema and handed to its handler.
 * An unknown name or a payload no schema accepts fails at once (InvalidJobError).
 */
import type { Logger } from 'pino';
import { deadlineJob, deadlinesJob } from '../shared/jobs/builders.js';
import { JOB_NAMES } from '../shared/jobs/options.js';
import {
  DeadlineJob,
  DeadlinesJob,
  DriftTickJob,
  FanoutJob,
  InvalidJobError,
  parseJob,
  ReconcileAgentJob,
  ReconcileAgentsJob,
} from '../shared/jobs/payloads.js';
import { addJob } from '../store/queues/queues.js';
import { advanceDriftCursor, driftTickEvery } from '../store/queues/schedules.js';
import type { QueueJob } from '../store/queues/workers.js';
import type { RedisClient } from '../store/redis/client.js';
import { deadlineDeps, dispatchDeps, type HandlerDepsContext } from './handler-deps.js';
import { deadlineHandler } from './handlers/deadline.js';
import { type AgentJob, driftTickHandler, fanoutHandler } from './handlers/fanout.js';
import { reconcileAgentHandler } from './handlers/reconcile-agent.js';
import { deadlinesHandler, reconcileAgentsHandler } from './handlers/reconcile-agents.js';
import { instructionIds } from './instruction-ids.js';

export interface ReconcileWorkerDeps extends HandlerDepsContext {
  redis: RedisClient;
  enqueueAgents(jobs: AgentJob[]): Promise<void>;
  logger: Logger;
}

export function reconcileWorker(d: ReconcileWorkerDeps): (job: QueueJob) => Promise<unknown> {
  const { stores, queues } = d;
  const scheduleDeadlines = async (ids: string[]) => {
    const checks = ids.map((id) => ({ instruction_id: id, misses: 0 }));
    await addJob(queues.reconcile, deadlinesJob(checks, d.checkEveryMs));
  };
  // Built once: every deadline job uses the same adapters.
  const deadlines = deadlineDeps(d);
  return async (job) => {
    switch (job.name) {
      case JOB_NAMES.agent: {
        const data = parseJob(ReconcileAgentJob, job.data, 'reconcile agent');
        return reconcileAgentHandler(data, instructionIds(d.identityKey, job)(data.agent), {
          ...dispatchDeps(d, d.logger.child({ queue: job.queueName, job: job.id, agent: data.agent })),
          getAgent: (name) => stores.onDispatch.directory.get(name),
          scheduleDeadline: async (id) => {
            await addJob(queues.reconcile, deadlineJob({ instruction_id: id, misses: 0 }, d.checkEveryMs));
          },
        });
      }
      case JOB_NAMES.agents:
        return reconcileAgentsHandler(
          parseJob(ReconcileAgentsJob, job.data, 'reconcile agents'),
          instructionIds(d.identityKey, job),
          {
            ...dispatchDeps(d, d.logger.child({ queue: job.queueName, job: job.id })),
            getAgents: (names) => Promise.all(names.map((name) => stores.onDispatch.directory.get(name))),
            scheduleDeadlines,
          },
        );
      case JOB_NAMES.deadlines:
        return deadlinesHandler(parseJob(DeadlinesJob, job.data, 'deadlines'), {
          ...deadlines,
          rescheduleAll: async (checks, delay) => addJob(queues.reconcile, deadlinesJob(checks, delay)),
        });
      case JOB_NAMES.fanout:
        return fanoutHandler(parseJob(FanoutJob, job.data, 'fanout'), {
          listAgents: () => stores.directory.list(),
          agentNames: () => stores.directory.names(),
          current: () => stores.state.current(),
          enqueueAgents: d.enqueueAgents,
          setRunAgents: (runId, agents) => stores.runs.setAgents(runId, agents),
        });
      case JOB_NAMES.deadline:
        return deadlineHandler(parseJob(DeadlineJob, job.data, 'deadline'), {
          ...deadlines,
          reschedule: async (data, delay) => addJob(queues.reconcile, deadlineJob(data, delay)),
        });
      case JOB_NAMES.driftTick:
        parseJob(DriftTickJob, job.data, 'drift-tick');
        return driftTick(d);
      default:
        throw new InvalidJobError(`unknown reconcile job "${job.name}"`);
    }
  };
}

async function driftTick(d: ReconcileWorkerDeps) {
  const pollIntervalMs = d.config.git.poll_interval_ms;
  const now = Date.now();
  const end = now + driftTickEvery(pollIntervalMs);
  const start = await advanceDriftCursor(d.redis, d.keys, now, end, pollIntervalMs);
  return driftTickHandler(start, end, now, {
    agentNames: () => d.stores.directory.names(),
    enqueueAgents: d.enqueueAgents,
    pollIntervalMs,
  });
}
