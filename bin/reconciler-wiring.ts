/**
 * The reconciler half of `fluke server` and all of `fluke reconciler`: a Git cache of the
 * process's own, the metrics recorder and the BullMQ workers.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SimpleGitSource } from '../reconciler/git/simple-git-source.js';
import { type Reconciler, startReconciler } from '../reconciler/reconciler.js';
import { MetricsRecorder } from '../store/metrics/metrics-recorder.js';
import { RedisMetricsTotals } from '../store/metrics/redis-metrics-totals.js';
import type { WiringContext } from './wiring-context.js';

export function wireReconciler(ctx: WiringContext, dataDir: string): Reconciler {
  const { config, redis, keys, events, logger, closers } = ctx;
  removeStaleGitCaches(dataDir, logger);
  const git = SimpleGitSource.fromConfig(config.git, {
    cacheDir: join(dataDir, `git-cache-${process.pid}`),
    logger,
  });
  // Closed after the workers (closers run in reverse): their last counts get flushed.
  const metrics = new MetricsRecorder({ totals: new RedisMetricsTotals({ redis, keys }), logger });
  closers.push({ what: 'metrics flush', run: () => metrics.close() });
  const reconciler = startReconciler({
    config,
    redis,
    logger,
    events,
    git,
    metrics,
    identityKey: ctx.identityKey,
  });
  closers.push({ what: 'reconciler workers', run: () => reconciler.close() });
  return reconciler;
}

/**
 * Each process keeps its own Git cache (`git-cache-<pid>`), so processes sharing a data dir never
 * fight over one; caches of processes that are gone are removed at start-up.
 */
function removeStaleGitCaches(dataDir: string, logger: Logger): void {
  let entries: string[];
  try {
    entries = readdirSync(dataDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(/^git-cache-(\d+)$/.exec(entry)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(dataDir, entry), { recursive: true, force: true });
    logger.debug({ dir: entry }, 'removed the git cache of a process that is gone');
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
