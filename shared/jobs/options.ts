/**
 * Queue names, job options and retention for every Fluke job, and the one job id cleaner. Pure:
 * `JobOptions` is our own slice of BullMQ's `JobsOptions` (structurally compatible), so shared/
 * never imports bullmq.
 */

export const QUEUE_NAMES = {
  /** The repeatable Git poll (single-flight). */
  poll: 'poll',
  /** Reconcile one agent (data: agent, trigger) or fan out to many. */
  reconcile: 'reconcile',
  /** Agent results forwarded by gateways. */
  results: 'results',
  /** Webhook alerts, retried with backoff. */
  alerts: 'alerts',
} as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/** Job names within their queue; each one's payload schema is in ./payloads.ts. */
export const JOB_NAMES = {
  poll: 'poll',
  agent: 'agent',
  agents: 'agents',
  fanout: 'fanout',
  deadline: 'deadline',
  deadlines: 'deadlines',
  driftTick: 'drift-tick',
  result: 'result',
  results: 'results',
  undeliverable: 'undeliverable',
  alert: 'alert',
} as const;

/** BullMQ's KeepJobs: a count, or an age with an optional count. */
export type KeepJobs = { count: number } | { age: number; count?: number };

/** The job options Fluke uses; each is passed to BullMQ unchanged. */
export interface JobOptions {
  jobId?: string;
  delay?: number;
  attempts?: number;
  /** A type BullMQ does not know goes to the worker's `settings.backoffStrategy`. */
  backoff?: number | { type: string; delay?: number };
  removeOnComplete?: boolean | number | KeepJobs;
  removeOnFail?: boolean | number | KeepJobs;
  deduplication?: { id: string; ttl?: number; keepLastIfActive?: boolean };
}

/** One job to add: what `queue.add(name, data, opts)` and `addBulk` take. */
export interface JobSpec<T> {
  name: string;
  data: T;
  opts: JobOptions;
}

/** Every queue's defaults: enough to inspect in Bull Board, never unbounded growth. */
export const DEFAULT_JOB_OPTIONS = {
  removeOnComplete: { count: 1000, age: 3600 },
  removeOnFail: { count: 5000, age: 7 * 24 * 3600 },
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
} as const satisfies JobOptions;

/** Gateway jobs (results, undeliverable, connect): consumed quickly; failures stay a week. */
export const GATEWAY_RETENTION = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
} as const satisfies JobOptions;

/**
 * A batched results job carries up to RESULTS_PER_JOB messages (~250 KB): 10,000 completed ones
 * kept would hold gigabytes of Redis memory. A thousand is still an hour of a 10,000-agent
 * fleet's quiet cycles to look at in Bull Board.
 */
export const BATCH_RETENTION = {
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 1000 },
} as const satisfies JobOptions;

/** The reconciler's own reconcile-queue jobs (agent, agents, deadline, deadlines). */
export const AGENT_JOB_OPTIONS = {
  removeOnComplete: { count: 1000, age: 3600 },
  removeOnFail: { count: 5000 },
  attempts: 3,
} as const satisfies JobOptions;

/**
 * Every alert job. 20 attempts ride out an outage of about an hour (1 + 2 + … + 256 s, then 5 min
 * each, reconciler/alert-sender.ts `alertBackoff`); failed alerts stay for a week so an operator
 * can see what was never delivered.
 */
export const ALERT_JOB_OPTIONS = {
  attempts: 20,
  // Not built into BullMQ: the alerts worker's `settings.backoffStrategy` computes it.
  backoff: { type: 'fluke-alert' },
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
} as const satisfies JobOptions;

/**
 * BullMQ custom job ids must not contain ':' and must not be plain integers: parts are joined
 * with '~' (so `kind~id` is never an integer) and ':' / whitespace become '_'.
 */
export function jobId(...parts: string[]): string {
  return parts.map((p) => p.replace(/[:\s]/g, '_')).join('~');
}
