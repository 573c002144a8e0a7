/**
 * Drift alert payloads, exactly the JSON docs/events.md shows, and their dedupe ids. Pure.
 * The meaning of each `remediation_status` is documented in docs/events.md.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { LabelsSchema } from './protocol.js';
import { DRIFT_POLICIES, type DriftPolicy, type Labels } from './types.js';

export const ALERT_EVENTS = ['drift_detected', 'drift_remediated', 'remediation_failed'] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

/**
 * - pending_manual: drift found in check mode (`alert_only`); nothing will be applied until a manual reconcile.
 * - in_progress:    drift found in apply mode; Fluke is applying (a `drift_remediated` or `remediation_failed` follows).
 * - remediated:     an apply by Fluke fixed it.
 * - resolved:       the drift went away without Fluke applying (fixed by hand on the host, or transient).
 * - failed:         the apply failed, did not converge, or timed out.
 */
export const REMEDIATION_STATUSES = [
  'pending_manual',
  'in_progress',
  'remediated',
  'resolved',
  'failed',
] as const;
export type RemediationStatus = (typeof REMEDIATION_STATUSES)[number];

export const AlertPayloadSchema = z.strictObject({
  event: z.enum(ALERT_EVENTS),
  timestamp: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
  agent: z.strictObject({ name: z.string().min(1), labels: LabelsSchema }),
  task: z.string().min(1),
  policy: z.enum(DRIFT_POLICIES),
  remediation_status: z.enum(REMEDIATION_STATUSES),
  revision: z.string(),
  drifted_steps: z.array(z.string()),
});
export type AlertPayload = z.infer<typeof AlertPayloadSchema>;

/** One alert to enqueue: the body, the id that makes retries harmless, and the episode it belongs to. */
export interface Alert {
  /** BullMQ job id and `x-fluke-alert-id` header: the same for every retry of the same decision. */
  id: string;
  episode_id: string;
  payload: AlertPayload;
}

/** `2025-03-13T14:22:01Z`: the documented timestamps carry whole seconds. */
export function isoSeconds(at: Date | string | number): string {
  const date = at instanceof Date ? at : new Date(at);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid time: ${String(at)}`);
  return `${date.toISOString().slice(0, 19)}Z`;
}

/**
 * Stable per (agent, task, episode, event): a decision judged twice (BullMQ retry, duplicate
 * result) yields the same id, so the queue and the receiver can drop the copy. Hex only, because
 * BullMQ refuses custom job ids containing `:`.
 */
export function alertId(agent: string, task: string, episodeId: string, event: AlertEvent): string {
  const digest = createHash('sha256').update(`${agent}\0${task}\0${episodeId}\0${event}`).digest('hex');
  return `alert-${digest.slice(0, 32)}`;
}

export interface BuildAlertInput {
  event: AlertEvent;
  at: Date | string | number;
  agent: { name: string; labels: Labels };
  task: string;
  policy: DriftPolicy;
  remediation_status: RemediationStatus;
  revision: string;
  drifted_steps: readonly string[];
  episode_id: string;
}

/** Key order follows docs/events.md so the JSON reads the same as the documented example. */
export function buildAlert(input: BuildAlertInput): Alert {
  return {
    id: alertId(input.agent.name, input.task, input.episode_id, input.event),
    episode_id: input.episode_id,
    payload: {
      event: input.event,
      timestamp: isoSeconds(input.at),
      agent: { name: input.agent.name, labels: { ...input.agent.labels } },
      task: input.task,
      policy: input.policy,
      remediation_status: input.remediation_status,
      revision: input.revision,
      drifted_steps: [...input.drifted_steps],
    },
  };
}
