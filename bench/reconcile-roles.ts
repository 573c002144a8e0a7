/**
 * The server-side children of bench/reconcile.ts, talking to the parent over the fork IPC channel.
 *   role (gateway | reconciler): → ready {port, implementation}; profile-start / profile-stop;
 *   gc-stats / rest-memory (role-stats.ts).
 *   baseline: → baseline {jobs, addMs, totalMs}.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { startServices } from '../bin/services.js';
import { uwsImplementation } from '../gateway/uws.js';
import { loadServerConfig } from '../shared/config/load.js';
import { Keys } from '../shared/keys.js';
import { serveProfiler } from './phase-profiler.js';
import { serveRoleStats } from './role-stats.js';

const send = (m: Record<string, unknown>) => process.send?.(m);

/** A gateway or a reconciler, through the same wiring `fluke gateway|reconciler` uses. */
export async function runRole(
  role: 'gateway' | 'reconciler',
  configFile: string,
  dataDir: string,
  /** A number (bench/reconcile.ts: `bench-<role>-<n>`) or the gateway id itself (bench/storm.ts). */
  instance: number | string = 0,
): Promise<void> {
  const config = await loadServerConfig(configFile);
  // warn: per-agent info lines would measure pino, not Fluke.
  const logger = pino({ level: 'warn', base: { role, instance } });
  const gatewayId = typeof instance === 'string' ? instance : `bench-${role}-${instance}`;
  const services = await startServices(config, role, { dataDir, logger, gatewayId });
  const stop = async () => {
    await services.close().catch(() => {});
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('disconnect', () => void stop());
  serveProfiler(send);
  serveRoleStats(send);
  send({ type: 'ready', port: services.ports.agents ?? 0, implementation: uwsImplementation() });
}

/**
 * The raw BullMQ rate on this Redis: `jobs` no-op jobs added with addBulk in batches of 1000 (as
 * the fan-out does) while one Worker of `concurrency` drains them, with the reconciler's job options.
 */
export async function runBaseline(opts: {
  redis: string;
  prefix: string;
  jobs: number;
  concurrency: number;
}): Promise<void> {
  const connection = new Redis(opts.redis, { maxRetriesPerRequest: null });
  const keys = new Keys(opts.prefix);
  const queue = new Queue('bench-baseline', { connection, prefix: keys.bullPrefix('bench-baseline') });
  let done = 0;
  let finishedAt = 0;
  const worker = new Worker('bench-baseline', async () => {}, {
    connection,
    prefix: keys.bullPrefix('bench-baseline'),
    concurrency: opts.concurrency,
  });
  process.once('disconnect', () => void worker.close());
  // Counted when BullMQ has moved the job to completed, as the reconciler's jobs are.
  const all = new Promise<void>((resolve) => {
    worker.on('completed', () => {
      done++;
      if (done === opts.jobs) {
        finishedAt = Date.now();
        resolve();
      }
    });
  });
  const options = {
    removeOnComplete: { count: 1000, age: 3600 },
    removeOnFail: { count: 5000 },
    attempts: 3,
  };
  const started = Date.now();
  for (let i = 0; i < opts.jobs; i += 1000) {
    const n = Math.min(1000, opts.jobs - i);
    await queue.addBulk(
      Array.from({ length: n }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts: options })),
    );
  }
  const addMs = Date.now() - started;
  await all;
  send({ type: 'baseline', jobs: opts.jobs, addMs, totalMs: finishedAt - started });
}
