/**
 * The BullMQ jobs a gateway produces, built by pure functions. Data shapes match `ResultJob` and
 * `ReconcileAgentJob` in reconciler/jobs.ts (the consumer validates them).
 */
import type { JobsOptions } from 'bullmq';
import type { ResultsItem } from '../shared/protocol.js';

/** What a gateway forwards: the receipts and results an agent may also send in a `results` frame. */
export type ForwardedMessage = ResultsItem;

export interface ResultJobData {
  kind: 'result';
  agent: string;
  session_id: string;
  gateway_id: string;
  /** ISO time the gateway read the message. */
  received_at: string;
  message: ForwardedMessage;
}

/** One forwarded message inside a batched results job. */
export interface ResultItem {
  agent: string;
  session_id: string;
  /** ISO time the gateway read the message. */
  received_at: string;
  message: ForwardedMessage;
}

/**
 * Many results in one job: what one forwarder flush took, grouped by (agent, session), in arrival
 * order within each agent. One job per flush chunk instead of one per message.
 */
export interface ResultsJobData {
  kind: 'results';
  gateway_id: string;
  items: ResultItem[];
}

export interface UndeliverableJobData {
  kind: 'undeliverable';
  agent: string;
  instruction_id: string;
  reason: string;
}

export interface ReconcileAgentJobData {
  agent: string;
  trigger: 'connect';
  run_id: null;
  tasks: null;
}

export interface JobSpec<T> {
  name: string;
  data: T;
  opts: JobsOptions;
}

/** Bounded retention: results are consumed quickly; failures stay a week for inspection. */
const RETENTION: JobsOptions = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

/**
 * BullMQ custom job ids must not contain ':' and must not be plain integers; the `kind~` prefix
 * rules out integers, and ':' / whitespace become '_'.
 */
export function safeJobId(kind: string, id: string): string {
  return `${kind}~${id.replace(/[:\s]/g, '_')}`;
}

export function resultJob(data: ResultJobData): JobSpec<ResultJobData> {
  const m = data.message;
  // Same result id re-sent after a reconnect = same job id: BullMQ ignores the duplicate while the
  // first is retained; after that the consumer's idempotency (event ids derived from the execution,
  // the judged execution id in the status) takes over.
  const jobId =
    m.type === 'instruction_receipt' ? safeJobId('receipt', m.instruction_id) : safeJobId('r', m.result_id);
  return { name: 'result', data, opts: { ...RETENTION, jobId } };
}

/** Messages per batched results job (bounded job size). */
export const RESULTS_PER_JOB = 500;

/**
 * A batched job carries up to RESULTS_PER_JOB messages (~250 KB): 10,000 completed ones kept
 * would hold gigabytes of Redis memory. A thousand is still an hour of a 10,000-agent fleet's
 * quiet cycles to look at in Bull Board.
 */
const BATCH_RETENTION: JobsOptions = {
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 1000 },
};

/**
 * A batched results job. No custom id: a re-sent result lands in a different batch, so the
 * consumer's idempotency (event ids derived from the execution, the judged execution id in the
 * status, finishTask) is what makes a duplicate harmless. Retried, because every step is idempotent.
 */
export function resultsJob(data: ResultsJobData): JobSpec<ResultsJobData> {
  return {
    name: 'results',
    data,
    opts: { ...BATCH_RETENTION, attempts: 3, backoff: { type: 'exponential', delay: 500 } },
  };
}

export function undeliverableJob(data: UndeliverableJobData): JobSpec<UndeliverableJobData> {
  return {
    name: 'undeliverable',
    data,
    opts: { ...RETENTION, jobId: safeJobId('undeliverable', data.instruction_id) },
  };
}

/**
 * A reconcile for a freshly connected agent. Deduplicated per agent with keepLastIfActive: a
 * reconnect storm leaves at most one job running and one waiting per agent.
 */
export function connectReconcileJob(agent: string): JobSpec<ReconcileAgentJobData> {
  return {
    name: 'agent',
    data: { agent, trigger: 'connect', run_id: null, tasks: null },
    opts: {
      deduplication: { id: safeJobId('connect', agent), keepLastIfActive: true },
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    },
  };
}
