/**
 * The poll queue's worker: the poll handler with Git, the compiler and the state store injected,
 * single-flight across replicas through a Redis lock.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../shared/config/types.js';
import { fanoutJob } from '../shared/jobs/builders.js';
import { PollJob, parseJob } from '../shared/jobs/payloads.js';
import type { Keys } from '../shared/keys.js';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import type { MetricsSink } from '../shared/metrics.js';
import type { StateStore } from '../store/desired-state/state-store.js';
import { meterCompile } from '../store/metrics/metrics-recorder.js';
import { addJob, type JobQueueHandle } from '../store/queues/queues.js';
import type { QueueJob } from '../store/queues/workers.js';
import type { RedisClient } from '../store/redis/client.js';
import { singleFlight } from '../store/redis/single-flight.js';
import type { GitSource } from './git-source.js';
import { checkAlertWebhook } from './handlers/alert-policy.js';
import { type PollOutcome, pollHandler } from './handlers/poll.js';

/** Longer than any poll takes; a killed poller blocks others at most this long. */
const POLL_LOCK_MS = 10 * 60_000;

export interface PollWorkerDeps {
  config: ServerConfig;
  redis: RedisClient;
  keys: Keys;
  git: GitSource;
  state: StateStore;
  reconcile: JobQueueHandle;
  metrics: MetricsSink;
  logger: Logger;
}

export function pollWorker(d: PollWorkerDeps): (job: QueueJob) => Promise<PollOutcome> {
  const compiler = new ManifestCompiler();
  return async (job) => {
    const data = parseJob(PollJob, job.data, 'poll');
    const outcome = await pollHandler({
      fetch: async () => d.git.fetch(),
      history: (revision, max) => d.git.firstParents(revision, max),
      filesAt: async (revision) => (await d.git.snapshotAt(revision)).files,
      walkBack: d.config.git.walk_back,
      compile: (files) =>
        meterCompile(d.metrics, async () => checkAlertWebhook(await compiler.compile(files), d.config.drift)),
      state: d.state,
      fanoutAll: async () => {
        await addJob(d.reconcile, fanoutJob({ trigger: 'commit', run_id: null, task: null, agent: null }));
      },
      singleFlight: (fn) => singleFlight(d.redis, d.keys.pollLock(), POLL_LOCK_MS, fn),
      logger: d.logger.child({ queue: job.queueName, job: job.id }),
    });
    d.metrics.inc('polls', { result: outcome.kind });
    // A push webhook's poll must fetch after the push: if another poll held the lock, it may
    // have fetched before it, so this one is retried (with backoff) rather than dropped.
    if (outcome.kind === 'skipped' && data.retry_if_busy) {
      throw new Error('another poll is running; retrying after it');
    }
    return outcome;
  };
}
