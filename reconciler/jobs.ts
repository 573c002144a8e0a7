/**
 * What travels in BullMQ jobs. Validated when a handler starts: a job written by an older or
 * broken producer fails with UnrecoverableError instead of retrying forever.
 */
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { TRIGGERS } from '../shared/plan.js';
import { ResultsItem } from '../shared/protocol.js';

export { TRIGGERS, type Trigger } from '../shared/plan.js';

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

/** Agents per `agents` job. */
export const AGENTS_PER_JOB = 500;

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

/** What gateways forward: receipts and results, as an agent sends them (also inside `results`). */
const ForwardedMessage = ResultsItem;

/** Bound on the messages of one batched results job (gateways send ≤ 500). */
export const MAX_RESULTS_PER_JOB = 1000;

/** Queue `reconcile`, job name `deadlines`: the deadlines of many instructions (one `agents` chunk). */
export const DeadlinesJob = z.object({
  checks: z.array(DeadlineJob).min(1).max(AGENTS_PER_JOB),
});
export type DeadlinesJob = z.infer<typeof DeadlinesJob>;

/** Queue `results`: what gateways forward. */
export const ResultJob = z.discriminatedUnion('kind', [
  /** One message (older gateways; still accepted). */
  z.object({
    kind: z.literal('result'),
    agent: z.string(),
    session_id: z.string(),
    gateway_id: z.string(),
    received_at: z.string(),
    message: ForwardedMessage,
  }),
  /** Many messages: one gateway flush, grouped by (agent, session), in arrival order. */
  z.object({
    kind: z.literal('results'),
    gateway_id: z.string(),
    items: z
      .array(
        z.object({
          agent: z.string(),
          session_id: z.string(),
          received_at: z.string(),
          message: ForwardedMessage,
        }),
      )
      .min(1)
      .max(MAX_RESULTS_PER_JOB),
  }),
  z.object({
    kind: z.literal('undeliverable'),
    agent: z.string(),
    instruction_id: z.string(),
    reason: z.string(),
  }),
]);
export type ResultJob = z.infer<typeof ResultJob>;

export function parseJob<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new UnrecoverableError(
      `invalid ${what} job: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`,
    );
  }
  return parsed.data;
}

/** BullMQ custom job ids must not contain ':' and must not be plain integers. */
export function jobId(...parts: string[]): string {
  return parts.map((p) => p.replace(/[:\s]/g, '_')).join('~');
}
