/**
 * Process wiring: the one place that reads config and builds the real clients for
 * `fluke server`, `fluke gateway` and `fluke reconciler`. Every other module takes what it needs.
 * The parts live beside it: redis-wiring (clients, event store), reconciler-wiring,
 * gateway-wiring and console-wiring (what listens on listen_http).
 */

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { Gateway } from '../gateway/gateway.js';
import type { Reconciler } from '../reconciler/reconciler.js';
import { loadServerConfig } from '../shared/config/load.js';
import type { ServerConfig } from '../shared/config/types.js';
import { coerceError } from '../shared/errors.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { pollNow } from '../store/queues/schedules.js';
import { watchEvictionPolicy } from '../store/redis/eviction-watch.js';
import { wireGateway } from './gateway-wiring.js';
import { wireReconciler } from './reconciler-wiring.js';
import { connectClients, wireIdentityKey } from './redis-wiring.js';
import { boundedShutdown, firstStopSignal, StepTracker } from './shutdown.js';
import type { Role, WiringContext } from './wiring-context.js';

export type { Role } from './wiring-context.js';

export interface Services {
  config: ServerConfig;
  logger: Logger;
  gateway: Gateway | null;
  reconciler: Reconciler | null;
  /** Ports actually bound (port 0 in tests). */
  ports: { agents: number | null; http: number | null };
  /** Graceful: each closer in turn (reported to `tracker`), then the Redis clients. */
  close(tracker?: StepTracker): Promise<void>;
  /** Drops the Redis connections at once (no QUIT): for when a graceful close hangs. */
  forceClose(): void;
}

export interface StartOptions {
  /** Where the git cache lives (one per process). */
  dataDir?: string;
  logger?: Logger;
  /** The gateway id (tests pin it). */
  gatewayId?: string;
  /** How often the Redis eviction policy is checked again (default EVICTION_CHECK_MS; tests lower it). */
  evictionCheckMs?: number;
}

export async function startServices(
  config: ServerConfig,
  role: Role,
  options: StartOptions = {},
): Promise<Services> {
  const logger = options.logger ?? createLogger(config.log, `fluke-${role}`);
  const { redis, eventsRedis, events } = await connectClients(config, role, logger);
  const eviction = watchEvictionPolicy({
    clients: eventsRedis ? [redis, eventsRedis] : [redis],
    logger,
    ...(options.evictionCheckMs ? { intervalMs: options.evictionCheckMs } : {}),
  });
  const closers: WiringContext['closers'] = [{ what: 'eviction watch', run: async () => eviction.stop() }];
  const keys = new Keys(config.redis.prefix);
  let identityKey: Buffer;
  try {
    identityKey = await wireIdentityKey(config, redis, keys, logger, closers);
  } catch (err) {
    eviction.stop();
    redis.disconnect();
    eventsRedis?.disconnect();
    throw err;
  }
  const ctx: WiringContext = { config, redis, keys, events, eviction, logger, identityKey, closers };
  const ports: Services['ports'] = { agents: null, http: null };
  let gateway: Gateway | null = null;
  let reconciler: Reconciler | null = null;

  try {
    if (role !== 'gateway')
      reconciler = wireReconciler(ctx, options.dataDir ?? join(process.cwd(), '.fluke-data'));
    if (role !== 'reconciler') {
      const wired = await wireGateway(ctx, reconciler, options.gatewayId);
      gateway = wired.gateway;
      ports.agents = wired.agentsPort;
      ports.http = wired.httpPort;
    }
    if (reconciler) await pollNow(reconciler.queues);
  } catch (err) {
    for (const c of closers.reverse()) await Promise.resolve(c.run()).catch(() => {});
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
    async close(tracker = new StepTracker()) {
      for (const c of closers.reverse()) await tracker.step(c.what, c.run, logger);
      await tracker.step('event store', () => events.close(), logger);
      redis.disconnect();
      eventsRedis?.disconnect();
    },
    forceClose() {
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
  const stop = firstStopSignal();
  if (role === 'reconciler' && values['exit-when-idle']) {
    await waitUntilIdle(services.reconciler as Reconciler, stop);
  } else {
    await stop;
  }
  const timeoutMs = services.config.shutdown_timeout_ms;
  logger.info({ shutdown_timeout_ms: timeoutMs }, `fluke ${role} stopping`);
  return boundedShutdown({
    logger,
    timeoutMs,
    graceful: (tracker) => services.close(tracker),
    force: () => services.forceClose(),
  });
}

/** Idle = nothing waiting or active on two checks in a row (a job may be between queues). */
async function waitUntilIdle(reconciler: Reconciler, stop: Promise<unknown>): Promise<void> {
  let stopped = false;
  const stopping = stop.then(() => {
    stopped = true;
    return false;
  });
  let quiet = 0;
  while (!stopped && quiet < 2) {
    await Promise.race([new Promise((r) => setTimeout(r, 500)), stopping]);
    if (stopped) break;
    // A frozen Redis never answers: the stop signal must not wait for it.
    const idle = await Promise.race([reconciler.idle().catch(() => false), stopping]);
    quiet = idle ? quiet + 1 : 0;
  }
}
