/**
 * What travels in every Fluke job, as zod schemas and their inferred types. Handlers parse their
 * payload first: a job written by an older or broken producer fails with `InvalidJobError` (the
 * queue layer turns it into BullMQ's UnrecoverableError) instead of retrying forever.
 */
import { z } from 'zod';
import { AlertPayloadSchema } from '../alerts.js';
import { TRIGGERS } from '../plan.js';
import { ResultsItem } from '../protocol.js';

/** Agents per `agents` job. */
export const AGENTS_PER_JOB = 500;

/** Queue `reconcile`, job name `agent`: reconcile one agent. */
export const ReconcileAgentJob = z.object({
  agent: z.string().min(1),
  trigger: z.enum(TRIGGERS),
  /** Manual runs: the run id whose progress to update. */
  run_id: z.string().nullable().default(null),
  /** Only these tasks (manual `task` target); null = every matched task. */
  tasks: z.array(z.string()).nullable().default(null),
  /** How many times this reconcile was put back because the agent was busy. */
  retry: z.number().int().nonnegative().default(0),
});
export type ReconcileAgentJob = z.infer<typeof ReconcileAgentJob>;

/** Queue `reconcile`, job name `agents`: reconcile many agents alike (a fan-out chunk). */
export const ReconcileAgentsJob = z.object({
  agents: z.array(z.string().min(1)).min(1).max(AGENTS_PER_JOB),
  trigger: z.enum(TRIGGERS),
  run_id: z.string().nullable().default(null),
  tasks: z.array(z.string()).nullable().default(null),
});
export type ReconcileAgentsJob = z.infer<typeof ReconcileAgentsJob>;

/** Queue `reconcile`, job name `fanout`: reconcile many agents (commit, manual all/task). */
export const FanoutJob = z.object({
  trigger: z.enum(TRIGGERS),
  run_id: z.string().nullable().default(null),
  /** Only agents matching this task, and only this task. */
  task: z.string().nullable().default(null),
  /** Only this agent. */
  agent: z.string().nullable().default(null),
});
export type FanoutJob = z.infer<typeof FanoutJob>;

/** Queue `reconcile`, job name `deadline`: has the agent answered this instruction? */
export const DeadlineJob = z.object({
  instruction_id: z.string().min(1),
  /** Consecutive checks that found the agent not running it. */
  misses: z.number().int().nonnegative().default(0),
});
export type DeadlineJob = z.infer<typeof DeadlineJob>;

/** Queue `reconcile`, job name `deadlines`: the deadlines of many instructions (one `agents` chunk). */
export const DeadlinesJob = z.object({
  checks: z.array(DeadlineJob).min(1).max(AGENTS_PER_JOB),
});
export type DeadlinesJob = z.infer<typeof DeadlinesJob>;

/** Queue `reconcile`, job name `drift-tick`: no data; the window comes from Redis. */
export const DriftTickJob = z.object({});
export type DriftTickJob = z.infer<typeof DriftTickJob>;

/** Queue `poll`, job name `poll`: from the scheduler and `pollNow` (`{}`), or a push webhook. */
export const PollJob = z.object({
  /** A push webhook's poll: retried when another poll holds the lock (it may predate the push). */
  retry_if_busy: z.boolean().default(false),
  /** The pushed commit (informational). */
  after: z.string().optional(),
});
export type PollJob = z.infer<typeof PollJob>;

/**
 * Queue `alerts`, job name `alert`: one drift alert (shared/alerts.ts). Where to send it is not
 * in the job: the `alert_webhook` URL is a secret, and the alerts worker reads it from its config
 * (a `url` left by an older producer is ignored).
 */
export const AlertJob = z.object({
  alert: z.object({ id: z.string().min(1), episode_id: z.string(), payload: AlertPayloadSchema }),
});
export type AlertJob = z.infer<typeof AlertJob>;

/** What gateways forward: receipts and results, as an agent sends them (also inside `results`). */
export const ForwardedMessage = ResultsItem;
export type ForwardedMessage = ResultsItem;

/** Messages per batched results job a gateway sends. */
export const RESULTS_PER_JOB = 500;
/** Bound on the messages of one batched results job the reconciler accepts. */
export const MAX_RESULTS_PER_JOB = 1000;

/** One forwarded message inside a batched results job. */
export const ResultItem = z.object({
  agent: z.string(),
  session_id: z.string(),
  /** ISO time the gateway read the message. */
  received_at: z.string(),
  message: ForwardedMessage,
});
export type ResultItem = z.infer<typeof ResultItem>;

/** Queue `results`, job name `result`: one message (older gateways; still accepted). */
export const SingleResultJob = z.object({
  kind: z.literal('result'),
  agent: z.string(),
  session_id: z.string(),
  gateway_id: z.string(),
  received_at: z.string(),
  message: ForwardedMessage,
});
export type SingleResultJob = z.infer<typeof SingleResultJob>;

/**
 * Queue `results`, job name `results`: one gateway flush, grouped by (agent, session), in arrival
 * order within each agent. One job per flush chunk instead of one per message.
 */
export const ResultsJob = z.object({
  kind: z.literal('results'),
  gateway_id: z.string(),
  items: z.array(ResultItem).min(1).max(MAX_RESULTS_PER_JOB),
});
export type ResultsJob = z.infer<typeof ResultsJob>;

/** Queue `results`, job name `undeliverable`: a published instruction no socket took. */
export const UndeliverableJob = z.object({
  kind: z.literal('undeliverable'),
  agent: z.string(),
  instruction_id: z.string(),
  reason: z.string(),
});
export type UndeliverableJob = z.infer<typeof UndeliverableJob>;

/** Queue `results`: what gateways (and `agent` jobs, for undeliverable) add. */
export const ResultJob = z.discriminatedUnion('kind', [SingleResultJob, ResultsJob, UndeliverableJob]);
export type ResultJob = z.infer<typeof ResultJob>;

/** A job whose payload (or name) no handler accepts: retrying cannot help. */
export class InvalidJobError extends Error {
  override readonly name = 'InvalidJobError';
}

export function parseJob<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new InvalidJobError(`invalid ${what} job: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`);
  }
  return parsed.data;
}
