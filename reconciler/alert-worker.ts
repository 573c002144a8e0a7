/**
 * The alerts queue: enqueueing a drift alert for the configured `alert_webhook`, and the worker
 * that delivers it (retried with `alertBackoff`; the last failed attempt records `alert_failed`).
 */
import type { Logger } from 'pino';
import type { Alert } from '../shared/alerts.js';
import { alertJob } from '../shared/jobs/builders.js';
import { AlertJob, parseJob } from '../shared/jobs/payloads.js';
import type { MetricsSink } from '../shared/metrics.js';
import { redactSecrets } from '../shared/redact.js';
import type { EventStore } from '../store/events/event-store.js';
import { addJob, type JobQueueHandle } from '../store/queues/queues.js';
import type { QueueJob } from '../store/queues/workers.js';
import { alertFailureError, sendAlert } from './alert-sender.js';

/** Adds an alert job, or drops (and logs) the alert when no webhook is configured. */
export function alertEnqueuer(
  queue: JobQueueHandle,
  webhook: string | null | undefined,
  logger: Logger,
): (alert: Alert) => Promise<void> {
  return async (alert) => {
    if (!webhook) {
      logger.warn(
        { alert: alert.payload.event, task: alert.payload.task },
        'alert dropped: no alert_webhook configured',
      );
      return;
    }
    // The job carries the alert only: the URL is a secret and stays in the config.
    await addJob(queue, alertJob(alert));
  };
}

export interface AlertWorkerDeps {
  /** `drift.alert_webhook` from this reconciler's config; null when none is configured. */
  url: string | null;
  events: EventStore;
  metrics: MetricsSink;
  timeoutMs: number;
}

export function alertWorker(deps: AlertWorkerDeps): (job: QueueJob) => Promise<{ status: number }> {
  return async (job) => {
    const { alert } = parseJob(AlertJob, job.data, 'alert');
    const sent = deps.url
      ? await sendAlert({
          url: deps.url,
          payload: alert.payload,
          alertId: alert.id,
          timeoutMs: deps.timeoutMs,
        })
      : ({
          ok: false,
          retryable: false,
          error: 'no alert_webhook is configured on this reconciler',
        } as const);
    const result = sent.ok ? sent : { ...sent, error: redactSecrets(sent.error) };
    const event = { event: alert.payload.event };
    if (result.ok) {
      deps.metrics.inc('alertsSent', event);
      return { status: result.status };
    }
    deps.metrics.inc('alertFailures', event);
    const lastAttempt = !result.retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (lastAttempt) {
      deps.metrics.inc('alertsAbandoned', event);
      await deps.events.record({
        kind: 'alert_failed',
        // Derived from the alert: a re-run of the last attempt records the same event once.
        id: `alert_failed~${alert.id}`,
        at: new Date().toISOString(),
        agent: alert.payload.agent.name,
        labels: alert.payload.agent.labels,
        task: alert.payload.task,
        revision: alert.payload.revision,
        alert_id: alert.id,
        alert_event: alert.payload.event,
        attempts: job.attemptsMade + 1,
        error: result.error.slice(0, 2000),
      });
    }
    throw alertFailureError(result);
  };
}
