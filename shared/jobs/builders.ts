/**
 * Every job Fluke adds, built by pure functions: name, data and options in one place, so producers
 * (gateway, reconciler, console API, schedules) add `spec.name, spec.data, spec.opts` and nothing
 * inline. The payload types are the consumers' schemas (./payloads.ts).
 */
import type { z } from 'zod';
import type { Alert } from '../alerts.js';
import { opaqueId } from '../redact.js';
import {
  AGENT_JOB_OPTIONS,
  ALERT_JOB_OPTIONS,
  BATCH_RETENTION,
  GATEWAY_RETENTION,
  JOB_NAMES,
  type JobSpec,
  jobId,
} from './options.js';
import type {
  AlertJob,
  DeadlineJob,
  DeadlinesJob,
  DriftTickJob,
  FanoutJob,
  PollJob,
  ReconcileAgentJob,
  ReconcileAgentsJob,
  ResultsJob,
  SingleResultJob,
  UndeliverableJob,
} from './payloads.js';

type PollData = z.input<typeof PollJob>;

export function resultJob(data: SingleResultJob): JobSpec<SingleResultJob> {
  const m = data.message;
  // Same result id re-sent after a reconnect = same job id: BullMQ ignores the duplicate while the
  // first is retained; after that the consumer's idempotency (event ids derived from the execution,
  // the judged execution id in the status) takes over.
  // Job ids show in Bull Board: the instruction id only as a digest (docs/security.md).
  const id =
    m.type === 'instruction_receipt' ? jobId('receipt', opaqueId(m.instruction_id)) : jobId('r', m.result_id);
  return { name: JOB_NAMES.result, data, opts: { ...GATEWAY_RETENTION, jobId: id } };
}

/**
 * A batched results job. No custom id: a re-sent result lands in a different batch, so the
 * consumer's idempotency (event ids derived from the execution, the judged execution id in the
 * status, finishTask) is what makes a duplicate harmless. Retried, because every step is idempotent.
 */
export function resultsJob(data: ResultsJob): JobSpec<ResultsJob> {
  return {
    name: JOB_NAMES.results,
    data,
    opts: { ...BATCH_RETENTION, attempts: 3, backoff: { type: 'exponential', delay: 500 } },
  };
}

/** One per instruction: a second report of the same undeliverable instruction adds nothing. */
export function undeliverableJob(data: UndeliverableJob): JobSpec<UndeliverableJob> {
  return {
    name: JOB_NAMES.undeliverable,
    data,
    opts: { ...GATEWAY_RETENTION, jobId: jobId('undeliverable', opaqueId(data.instruction_id)) },
  };
}

/**
 * The connect checks of the agents that registered on one gateway within a short window, as one
 * job (gateway/connect-checks.ts): a reconnect storm costs one job per few hundred agents.
 */
export function connectChecksJob(agents: string[]): JobSpec<z.input<typeof ReconcileAgentsJob>> {
  return {
    name: JOB_NAMES.agents,
    data: { agents, trigger: 'connect', run_id: null, tasks: null },
    opts: { ...GATEWAY_RETENTION },
  };
}

/** One agent's reconcile, due in `delayMs` (a busy retry, or a drift check spread over the period). */
export function agentJob(data: ReconcileAgentJob, delayMs: number): JobSpec<ReconcileAgentJob> {
  return { name: JOB_NAMES.agent, data, opts: { ...AGENT_JOB_OPTIONS, delay: delayMs } };
}

/** Many agents alike, due in `delayMs`. */
export function agentsJob(data: ReconcileAgentsJob, delayMs: number): JobSpec<ReconcileAgentsJob> {
  return { name: JOB_NAMES.agents, data, opts: { ...AGENT_JOB_OPTIONS, delay: delayMs } };
}

/** A fan-out (commit, manual run): the queue's default options. */
export function fanoutJob(data: FanoutJob): JobSpec<FanoutJob> {
  return { name: JOB_NAMES.fanout, data, opts: {} };
}

export function deadlineJob(data: DeadlineJob, delayMs: number): JobSpec<DeadlineJob> {
  return { name: JOB_NAMES.deadline, data, opts: { ...AGENT_JOB_OPTIONS, delay: delayMs } };
}

export function deadlinesJob(checks: DeadlineJob[], delayMs: number): JobSpec<DeadlinesJob> {
  return { name: JOB_NAMES.deadlines, data: { checks }, opts: { ...AGENT_JOB_OPTIONS, delay: delayMs } };
}

/** What the `git-poll` job scheduler adds every poll interval. */
export function scheduledPollJob(): Omit<JobSpec<PollData>, 'opts'> {
  return { name: JOB_NAMES.poll, data: {} };
}

/** What the `drift-tick` job scheduler adds. */
export function driftTickJob(): Omit<JobSpec<DriftTickJob>, 'opts'> {
  return { name: JOB_NAMES.driftTick, data: {} };
}

/** A poll now (start-up): deduplicated while one is waiting. */
export function pollNowJob(): JobSpec<PollData> {
  return {
    name: JOB_NAMES.poll,
    data: {},
    opts: { jobId: 'poll-now', removeOnComplete: true, removeOnFail: true },
  };
}

/**
 * A push webhook's poll: one job per pushed commit, so a redelivered hook finds it waiting and adds
 * nothing; retried while another poll holds the lock (that one may have fetched before the push).
 */
export function pushPollJob(after: string): JobSpec<PollData> {
  return {
    name: JOB_NAMES.poll,
    data: { retry_if_busy: true, after },
    opts: {
      jobId: `push-${after}`,
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 8,
      backoff: { type: 'exponential', delay: 1000 },
    },
  };
}

/** Job id = alert id: a re-run handler cannot enqueue the same alert twice. */
export function alertJob(alert: Alert): JobSpec<AlertJob> {
  return { name: JOB_NAMES.alert, data: { alert }, opts: { ...ALERT_JOB_OPTIONS, jobId: alert.id } };
}
