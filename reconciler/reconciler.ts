/**
 * The reconciler: BullMQ workers over the poll, reconcile, results and alerts queues, each
 * handing its job to a small stateless handler with the real adapters injected.
 * Killable at any moment: jobs are at-least-once and every handler is idempotent.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../shared/config/types.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { parseJob, ResultJob } from '../shared/jobs/payloads.js';
import { Keys } from '../shared/keys.js';
import { liveness } from '../shared/liveness.js';
import { type MetricsSink, noopMetrics } from '../shared/metrics.js';
import type { EventStore } from '../store/events/event-store.js';
import { closeQueues, createQueues, type Queues, queuesIdle } from '../store/queues/queues.js';
import { keepSchedules } from '../store/queues/schedules.js';
import { createWorker, type QueueJob } from '../store/queues/workers.js';
import type { RedisClient } from '../store/redis/client.js';
import { agentEnqueuer } from './agent-jobs.js';
import { alertBackoff } from './alert-sender.js';
import { alertEnqueuer, alertWorker } from './alert-worker.js';
import type { GitSource } from './git-source.js';
import { type ResultDeps, resultHandler } from './handlers/result.js';
import { pollWorker } from './poll-worker.js';
import { reconcileWorker } from './reconcile-worker.js';
import { openReconcilerStores } from './reconciler-stores.js';

export interface ReconcilerOptions {
  config: ServerConfig;
  redis: RedisClient;
  logger: Logger;
  events: EventStore;
  git: GitSource;
  /** The cluster's identity key: instruction ids are tagged with their agent under it. */
  identityKey: Buffer;
  /** Per-queue worker concurrency. */
  concurrency?: Partial<Record<'reconcile' | 'results' | 'alerts', number>>;
  /** How long an instruction may run at most before it is called a timeout. */
  maxInstructionMs?: number;
  alertTimeoutMs?: number;
  /** Cluster-wide metrics (store/metrics/metrics-recorder.ts); none recorded when absent. */
  metrics?: MetricsSink;
}

export interface Reconciler {
  queues: Queues;
  /** Resolves when every queue has nothing waiting or active (delayed jobs do not count). */
  idle(): Promise<boolean>;
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 5000;

/**
 * Results jobs handled at once. A job is a batch of up to 500 messages, read and written in a few
 * pipelines, so a handful keeps the CPU busy; 50 held ~50 jobs' data and replies in memory at
 * once, which the garbage collector paid for (10,000-agent bench: the same cycle time, less CPU).
 */
const RESULTS_CONCURRENCY = 8;

export function startReconciler(opts: ReconcilerOptions): Reconciler {
  const { config, redis, events } = opts;
  const logger = opts.logger.child({ component: 'reconciler' });
  const metrics = opts.metrics ?? noopMetrics;
  const keys = new Keys(config.redis.prefix);
  const queues = createQueues(redis, keys, logger);
  const stores = openReconcilerStores(redis, config, keys, metrics);
  const enqueueAgents = agentEnqueuer(queues.reconcile);
  const resultDeps: ResultDeps = {
    instructions: stores.instructions,
    events,
    statuses: stores.statuses,
    runs: stores.runs,
    labelsOf: async (agent) => (await stores.directory.get(agent))?.labels ?? {},
    sessionOf: (agent) => stores.directory.get(agent),
    enqueueAlert: alertEnqueuer(queues.alerts, config.drift.alert_webhook, logger),
    retryLater: async (job, delayMs) => enqueueAgents([{ data: job, delayMs }]),
    logger,
    metrics,
  };
  const resultWorker = async (job: QueueJob) =>
    resultHandler(parseJob(ResultJob, job.data, 'result'), {
      ...resultDeps,
      logger: logger.child({ queue: job.queueName, job: job.id }),
    });

  const common = { connection: redis, keys, logger };
  const c = opts.concurrency ?? {};
  const workers = [
    createWorker(
      QUEUE_NAMES.poll,
      pollWorker({
        config,
        redis,
        keys,
        git: opts.git,
        state: stores.state,
        reconcile: queues.reconcile,
        metrics,
        logger,
      }),
      { ...common, concurrency: 1 },
    ),
    createWorker(
      QUEUE_NAMES.reconcile,
      reconcileWorker({
        config,
        keys,
        identityKey: opts.identityKey,
        redis,
        stores,
        queues,
        resultDeps,
        enqueueAgents,
        // A disconnected agent gets at least ~10 s (three checks, 5 s apart) to come back before its work times out.
        checkEveryMs: liveness(config.heartbeat_interval_ms).deadlineCheckMs,
        maxInstructionMs: opts.maxInstructionMs ?? 6 * 3600_000,
        logger,
      }),
      { ...common, concurrency: c.reconcile ?? 50 },
    ),
    createWorker(QUEUE_NAMES.results, resultWorker, {
      ...common,
      concurrency: c.results ?? RESULTS_CONCURRENCY,
    }),
    createWorker(
      QUEUE_NAMES.alerts,
      alertWorker({
        url: config.drift.alert_webhook,
        events,
        metrics,
        timeoutMs: opts.alertTimeoutMs ?? 10_000,
      }),
      { ...common, concurrency: c.alerts ?? 10, backoffStrategy: alertBackoff },
    ),
  ];
  const stopSchedules = keepSchedules(queues, config.git.poll_interval_ms, logger);

  return {
    queues,
    idle: () => queuesIdle(queues),
    async close() {
      stopSchedules();
      await Promise.allSettled(workers.map((w) => w.close(CLOSE_GRACE_MS)));
      await closeQueues(queues);
      stores.close();
    },
  };
}
