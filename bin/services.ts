/**
 * Process wiring: the one place that reads config and builds the real clients for
 * `fluke server`, `fluke gateway` and `fluke reconciler`. Every other module takes what it needs.
 */

import uWS from 'uWebSockets.js';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { createConsoleAuth } from '../console/auth.js';
import { mountBullBoard } from '../console/bull-board.js';
import { mountRouter } from '../console/http-server.js';
import { createMetricsRegistry, mountMetrics } from '../console/metrics.js';
import { Router } from '../console/router.js';
import { mountUi } from '../console/static.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { GatewayMetrics } from '../gateway/gateway-metrics.js';
import { SimpleGitSource } from '../reconciler/git/simple-git-source.js';
import { type Reconciler, startReconciler } from '../reconciler/reconciler.js';
import { parseListenAddress } from '../shared/config/listen-address.js';
import { ConfigError, loadServerConfig } from '../shared/config/load.js';
import type { ServerConfig } from '../shared/config/types.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { renderClusterMetrics } from '../shared/metrics.js';
import { coerceError } from '../shared/types.js';
import type { EventStore } from '../store/events/event-store.js';
import { MemoryEventStore } from '../store/events/memory-event-store.js';
import { RedisEventStore } from '../store/events/redis-event-store.js';
import { MetricsRecorder, readClusterMetrics } from '../store/metrics/metrics-recorder.js';
import { RedisMetricsTotals } from '../store/metrics/redis-metrics-totals.js';
import { boardQueues } from '../store/queues/board.js';
import { keepPromoting } from '../store/queues/delayed-promoter.js';
import { closeQueues, createQueues } from '../store/queues/queues.js';
import { keepSchedules, pollNow } from '../store/queues/schedules.js';
import { checkEvictionPolicy, createRedis, type RedisClient } from '../store/redis/client.js';
import { mountConsoleApi } from './console-api.js';

export type Role = 'server' | 'gateway' | 'reconciler';

export interface Services {
  config: ServerConfig;
  logger: Logger;
  gateway: Gateway | null;
  reconciler: Reconciler | null;
  /** Ports actually bound (port 0 in tests). */
  ports: { agents: number | null; http: number | null };
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where the git cache lives (one per process). */
  dataDir?: string;
  logger?: Logger;
  /** The gateway id (tests pin it). */
  gatewayId?: string;
}

/** Fails with a clear message on an evicting Redis: BullMQ would lose jobs. */
async function connectRedis(url: string, logger: Logger): Promise<RedisClient> {
  const redis = createRedis(url);
  let warned = false;
  redis.on('error', (err) => {
    if (!warned) logger.warn({ err: err.message }, 'redis connection error; retrying');
    warned = true;
  });
  redis.on('ready', () => {
    if (warned) logger.info('redis connection restored');
    warned = false;
  });
  const problem = await checkEvictionPolicy(redis);
  if (problem) {
    redis.disconnect();
    throw new ConfigError([{ file: 'redis', line: 0, field: 'server.redis.url', message: problem }]);
  }
  return redis;
}

function eventStoreFor(
  config: ServerConfig,
  role: Role,
  redis: RedisClient | null,
  eventsRedis: RedisClient | null,
): EventStore {
  const keys = new Keys(config.redis.prefix);
  if (config.event_store.backend === 'memory') {
    if (role !== 'server') {
      throw new ConfigError([
        {
          file: config.source,
          line: 0,
          field: 'server.event_store.backend',
          message: `"memory" works only for the all-in-one \`fluke server\`: a separate ${role} cannot share it; use "redis"`,
        },
      ]);
    }
    return new MemoryEventStore({ maxEventsPerAgent: config.event_store.memory.max_events_per_agent });
  }
  if (eventsRedis) {
    return new RedisEventStore({
      redis: eventsRedis,
      keys,
      ttlMs: config.event_store.redis.ttl_ms,
      ownsClient: true,
    });
  }
  if (!redis) throw new Error('the redis event store needs a Redis client');
  // Its own auto-pipelined connection: the events of concurrent result handlers share socket writes.
  const client = redis.duplicate({ enableAutoPipelining: true });
  client.on('error', () => {}); // the main client logs an outage once
  return new RedisEventStore({
    redis: client,
    keys,
    ttlMs: config.event_store.redis.ttl_ms,
    ownsClient: true,
  });
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

function listenHttp(
  app: uWS.TemplatedApp,
  address: string,
): Promise<{ port: number; socket: uWS.us_listen_socket }> {
  const { host, port } = parseListenAddress(address);
  return new Promise((resolve, reject) => {
    app.listen(host || '0.0.0.0', port, (socket) => {
      if (!socket) reject(new Error(`cannot listen on ${address} (listen_http)`));
      else resolve({ port: uWS.us_socket_local_port(socket), socket });
    });
  });
}

export async function startServices(
  config: ServerConfig,
  role: Role,
  options: StartOptions = {},
): Promise<Services> {
  const logger = options.logger ?? createLogger(config.log, `fluke-${role}`);
  // Refuse a memory event store outside the all-in-one server before connecting to anything.
  if (config.event_store.backend === 'memory') eventStoreFor(config, role, null, null);
  const redis = await connectRedis(config.redis.url, logger);
  let eventsRedis: RedisClient | null = null;
  try {
    if (config.event_store.backend === 'redis' && config.event_store.redis.url !== config.redis.url) {
      eventsRedis = await connectRedis(config.event_store.redis.url, logger);
    }
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const events = eventStoreFor(config, role, redis, eventsRedis);
  const keys = new Keys(config.redis.prefix);
  const closers: (() => Promise<void>)[] = [];
  const ports: Services['ports'] = { agents: null, http: null };
  let gateway: Gateway | null = null;
  let reconciler: Reconciler | null = null;

  try {
    if (role !== 'gateway') {
      const dataDir = options.dataDir ?? join(process.cwd(), '.fluke-data');
      removeStaleGitCaches(dataDir, logger);
      const git = SimpleGitSource.fromConfig(config.git, {
        cacheDir: join(dataDir, `git-cache-${process.pid}`),
        logger,
      });
      // Closed after the workers (closers run in reverse): their last counts get flushed.
      const metrics = new MetricsRecorder({ totals: new RedisMetricsTotals({ redis, keys }), logger });
      closers.push(() => metrics.close());
      reconciler = startReconciler({ config, redis, logger, events, git, metrics });
      const r = reconciler;
      closers.push(() => r.close());
    }
    if (role !== 'reconciler') {
      const metricsRegistry = createMetricsRegistry();
      const gatewayMetrics = new GatewayMetrics(metricsRegistry);
      gateway = createGateway({
        config,
        redis,
        logger,
        metrics: gatewayMetrics,
        ...(options.gatewayId ? { gatewayId: options.gatewayId } : {}),
      });
      gatewayMetrics.watch(gateway);
      ports.agents = (await gateway.listen()).port;
      const g = gateway;
      closers.push(() => g.drain());

      // Gateways keep the schedules alive too, so nothing depends on a long-lived reconciler.
      const queues = reconciler?.queues ?? createQueues(redis, keys, logger);
      const stopSchedules = keepSchedules(queues, config.git.poll_interval_ms, logger);
      // And they move due delayed jobs to `wait`, which BullMQ does only inside a running worker:
      // with reconcilers run only as queue-scaled jobs, drift checks and deadlines would never start.
      const stopPromoting = keepPromoting({ redis, queues: Object.values(queues), logger });
      // The console on listen_http: one router and one auth for every part of it (API, web UI,
      // Bull Board, /metrics); each part mounts its routes on `router` and checks with `consoleAuth`.
      const consoleAuth = createConsoleAuth({
        apiTokens: config.api_tokens,
        readAccess: config.api_read_access,
      });
      const router = new Router();
      const api = mountConsoleApi(router, { config, redis, keys, events, queues, auth: consoleAuth, logger });
      closers.push(async () => api.close());
      const app = config.tls.enabled
        ? uWS.SSLApp({ cert_file_name: config.tls.cert_file ?? '', key_file_name: config.tls.key_file ?? '' })
        : uWS.App();
      mountUi(router, { logger }); // the web UI at / (console/ui/)
      // Bull Board at /queues and Prometheus /metrics, behind the API's read/write checks.
      mountBullBoard(router, {
        queues: (readOnly) => boardQueues(Object.values(queues), readOnly),
        auth: consoleAuth,
        logger,
      });
      mountMetrics(router, {
        auth: consoleAuth,
        registry: metricsRegistry,
        queues,
        eventsSize: () => events.size(),
        problems: () => api.statuses.listProblems(),
        cluster: async () => renderClusterMetrics(await readClusterMetrics(redis, keys)),
        logger,
      });
      mountRouter(app, { router, maxBodyBytes: 64 * 1024, logger });
      const http = await listenHttp(app, config.listen_http);
      ports.http = http.port;
      closers.push(async () => {
        stopSchedules();
        stopPromoting();
        uWS.us_listen_socket_close(http.socket);
        if (!reconciler) await closeQueues(queues);
      });
    }
    if (reconciler) await pollNow(reconciler.queues);
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {});
    redis.disconnect();
    eventsRedis?.disconnect();
    throw err;
  }

  return {
    config,
    logger,
    gateway,
    reconciler,
    ports,
    async close() {
      for (const c of closers.reverse())
        await c().catch((err) => logger.warn({ err: coerceError(err).message }, 'close failed'));
      await events.close().catch(() => {});
      redis.disconnect();
      eventsRedis?.disconnect();
    },
  };
}

/** `fluke server|gateway|reconciler --config server.hcl`: run until SIGTERM/SIGINT. */
export async function runRole(role: Role, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c', default: 'server.hcl' },
      'exit-when-idle': { type: 'boolean', default: false },
      'data-dir': { type: 'string' },
    },
    allowPositionals: false,
  });
  if (values['exit-when-idle'] && role !== 'reconciler') {
    process.stderr.write(`fluke ${role}: --exit-when-idle is for \`fluke reconciler\` only\n`);
    return 2;
  }
  let services: Services;
  try {
    const config = await loadServerConfig(values.config as string);
    services = await startServices(config, role, values['data-dir'] ? { dataDir: values['data-dir'] } : {});
  } catch (err) {
    process.stderr.write(`fluke ${role}: ${coerceError(err).message}\n`);
    return 1;
  }
  const { logger } = services;
  logger.info(
    { agents_port: services.ports.agents, http_port: services.ports.http },
    `fluke ${role} started`,
  );
  const stop = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  if (role === 'reconciler' && values['exit-when-idle']) {
    await waitUntilIdle(services.reconciler as Reconciler, stop);
  } else {
    await stop;
  }
  logger.info(`fluke ${role} stopping`);
  await services.close();
  return 0;
}

/** Idle = nothing waiting or active on two checks in a row (a job may be between queues). */
async function waitUntilIdle(reconciler: Reconciler, stop: Promise<void>): Promise<void> {
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  let quiet = 0;
  while (!stopped && quiet < 2) {
    await new Promise((r) => setTimeout(r, 500));
    quiet = (await reconciler.idle().catch(() => false)) ? quiet + 1 : 0;
  }
}
