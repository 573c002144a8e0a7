/**
 * `GET /metrics` (Prometheus text) on listen_http, behind the read check. Three sources:
 * - this process's registry: Node/process defaults and the gateway's own metrics;
 * - gauges read at scrape time: BullMQ job counts per queue, events held, the drift list;
 * - the cluster-wide families reconcilers record in Redis (shared/metrics.ts), read back as is.
 * Each scrape-time source is bounded by a timeout and may fail alone: the scrape still answers,
 * with `fluke_metrics_source_up{source}` at 0 for what could not be read.
 */

import type { Logger } from 'pino';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { coerceError } from '../shared/errors.js';
import type { ProblemEntry } from '../shared/status.js';
import { withTimeout } from '../shared/with-timeout.js';
import type { ConsoleAuth } from './auth.js';
import { withRead } from './challenge.js';
import type { Router } from './router.js';

/** The job states reported per queue (BullMQ getJobCounts). */
export const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'paused',
  'completed',
  'failed',
] as const;

export interface JobCountSource {
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
}

export interface MetricsRouteOptions {
  auth: ConsoleAuth;
  /** The process registry (createMetricsRegistry), holding the gateway metrics. */
  registry: Registry;
  queues: Readonly<Record<string, JobCountSource>>;
  eventsSize(): Promise<number>;
  problems(): Promise<ProblemEntry[]>;
  /** The cluster families as Prometheus text (readClusterMetrics + renderClusterMetrics). */
  cluster(): Promise<string>;
  /** Whether the Redis eviction policy was last found fit (the `fluke_redis_eviction_policy_ok` gauge). */
  evictionPolicyOk?: () => boolean;
  logger: Logger;
  timeoutMs?: number;
}

/** One registry per process (tests run several gateways in one process), with Node's defaults. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function mountMetrics(router: Router, o: MetricsRouteOptions): Router {
  const registers = [o.registry];
  const timeoutMs = o.timeoutMs ?? 5000;
  const queueJobs = new Gauge({
    name: 'fluke_queue_jobs',
    help: 'Jobs per BullMQ queue and state, read at scrape time',
    labelNames: ['queue', 'state'],
    registers,
  });
  const eventsStored = new Gauge({
    name: 'fluke_events_stored',
    help: 'Events held by the event store (approximate for Redis: see docs/events.md)',
    registers,
  });
  const driftEntries = new Gauge({
    name: 'fluke_drift_entries',
    help: '(agent, task) pairs on the drift list (GET /api/v1/drift), by drift policy and last outcome',
    labelNames: ['policy', 'outcome'],
    registers,
  });
  const sourceUp = new Gauge({
    name: 'fluke_metrics_source_up',
    help: 'Whether the last scrape could read this source (1) or not (0)',
    labelNames: ['source'],
    registers,
  });
  const evictionPolicyOk = o.evictionPolicyOk;
  if (evictionPolicyOk) {
    new Gauge({
      name: 'fluke_redis_eviction_policy_ok',
      help: 'Whether Redis maxmemory-policy was last found to be noeviction (1) or not (0); checked every minute',
      registers,
      collect() {
        this.set(evictionPolicyOk() ? 1 : 0);
      },
    });
  }
  const failing = new Set<string>();
  const settle = <T>(source: string, read: () => Promise<T>): Promise<T | null> =>
    withTimeout(read(), timeoutMs, source).then(
      (v) => {
        sourceUp.set({ source }, 1);
        if (failing.delete(source)) o.logger.info({ source }, 'metrics source readable again');
        return v;
      },
      (err: unknown) => {
        sourceUp.set({ source }, 0);
        // Once per outage: a scraper asks every few seconds.
        if (!failing.has(source))
          o.logger.warn({ source, err: coerceError(err).message }, 'metrics source unreadable');
        failing.add(source);
        return null;
      },
    );

  router.get(
    '/metrics',
    withRead(o.auth, async () => {
      const [counts, events, problems, cluster] = await Promise.all([
        settle('queues', () =>
          Promise.all(
            Object.entries(o.queues).map(
              async ([name, q]) => [name, await q.getJobCounts(...QUEUE_STATES)] as const,
            ),
          ),
        ),
        settle('events', () => o.eventsSize()),
        settle('drift', () => o.problems()),
        settle('cluster', () => o.cluster()),
      ]);
      // A source that failed drops its series rather than repeating stale values.
      queueJobs.reset();
      eventsStored.reset();
      driftEntries.reset();
      if (counts) {
        for (const [queue, byState] of counts)
          for (const state of QUEUE_STATES) queueJobs.set({ queue, state }, byState[state] ?? 0);
      }
      if (events !== null) eventsStored.set(events);
      if (problems) {
        const tally = new Map<string, { policy: string; outcome: string; n: number }>();
        for (const { status } of problems) {
          const key = `${status.policy}\0${status.outcome}`;
          const cur = tally.get(key) ?? { policy: status.policy, outcome: status.outcome, n: 0 };
          cur.n++;
          tally.set(key, cur);
        }
        for (const { policy, outcome, n } of tally.values()) driftEntries.set({ policy, outcome }, n);
      }
      const text = (await o.registry.metrics()) + (cluster ?? '');
      return {
        status: 200,
        headers: { 'content-type': o.registry.contentType, 'cache-control': 'no-store' },
        raw: text,
      };
    }),
  );
  return router;
}
