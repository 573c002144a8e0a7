/**
 * createGateway: assembles the agent endpoint (uWS), the session controller, the Redis registry,
 * the inbox reader and the result/output forwarders. Takes a connected ioredis client and a
 * logger; builds nothing from config files itself (that is bin/services.ts, the process wiring).
 */

import { EventEmitter } from 'node:events';
import type { AgentLimitsConfig } from '../shared/config/agent-limits.js';
import { parseListenAddress } from '../shared/config/listen-address.js';
import type { IdentityConfig, ServerConfig } from '../shared/config/types.js';
import { errorMessage } from '../shared/errors.js';
import { Keys } from '../shared/keys.js';
import { liveness } from '../shared/liveness.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode } from '../shared/protocol.js';
import type { Enrollments } from '../store/identity/enrollments.js';
import { InboxReader } from '../store/inbox/gateway-inbox.js';
import { RedisGatewayInbox } from '../store/inbox/redis-inbox.js';
import { duplicateClient, onClusterNodeLoss, type RedisClient, redisRunId } from '../store/redis/client.js';
import type { Registry } from '../store/registry/registry.js';
import { CONNECT_CHECK_WINDOW_MS } from './connect-checks.js';
import type { GatewayEventMap } from './gateway-events.js';
import type { GatewayMetricsPort } from './gateway-metrics.js';
import {
  createForwarder,
  createGuard,
  createOutput,
  defaultGatewayId,
  openAdmission,
  openEndpoint,
  openGatewayQueues,
  openIdentity,
  openRegistry,
} from './gateway-parts.js';
import { InstructionDelivery } from './instruction-delivery.js';
import type { JobQueue } from './result-forwarder.js';
import { SessionController } from './session-controller.js';
import { SessionTable } from './session-table.js';

export type GatewayConfig = Pick<
  ServerConfig,
  'listen_agents' | 'agent_tokens' | 'scoped_agent_tokens' | 'heartbeat_interval_ms' | 'tls' | 'redis'
> & {
  /** Absent: the defaults of an `identity { }` block left out. */
  identity?: IdentityConfig;
  /** Absent or partial: the defaults of shared/config/agent-limits.ts fill in. */
  agent_limits?: Partial<AgentLimitsConfig>;
  /** Absent: no trusted proxies (every peer is an agent's own address). */
  http?: Pick<ServerConfig['http'], 'trusted_proxies'>;
};

export interface GatewayLimits {
  /** Largest agent frame accepted; larger ones close the socket with 1009. */
  maxPayloadBytes: number;
  /** Per-socket unsent bytes; a send beyond it disconnects the agent (4002). */
  maxBackpressureBytes: number;
  /** An enqueue slower than this is treated as failed: no ack, the agent re-sends. */
  enqueueTimeoutMs: number;
  /** Time an authorised socket gets to send `register`. */
  registerTimeoutMs: number;
  maxPendingResults: number;
  maxPendingOutput: number;
  outputBufferLines: number;
  outputBufferTtlMs: number;
  maxBacklog: number;
  /** Sustained live-output bytes per second per agent; lines beyond it are dropped (`output_rate`). */
  outputBytesPerSecond: number;
  /** Output bytes an agent may send at once above that rate (the token bucket's size). */
  outputBurstBytes: number;
  /** Agents registering within this long get their connect checks in one job (gateway/connect-checks.ts). */
  connectCheckWindowMs: number;
}

export interface GatewayOptions {
  config: GatewayConfig;
  /** Command connection (shared with the BullMQ queues); the subscriber is duplicated from it. */
  redis: RedisClient;
  logger: Logger;
  gatewayId?: string;
  limits?: Partial<GatewayLimits>;
  /** Replace the BullMQ queues (tests inject failing ones). */
  queues?: { results: JobQueue; reconcile: JobQueue };
  /** Replace the Redis registry. */
  registry?: Registry;
  /** Socket-path counters (gateway/gateway-metrics.ts); events cover the rest. */
  metrics?: GatewayMetricsPort;
  /**
   * The identity key (bin/ passes the process's, store/identity/identity-key.ts). Absent: the
   * gateway loads it itself in listen() and keeps it asserted in Redis.
   */
  identityKey?: Buffer;
  /** Replace the Redis enrollment records. */
  enrollments?: Enrollments;
}

export interface Gateway {
  readonly id: string;
  readonly events: EventEmitter<GatewayEventMap>;
  listen(): Promise<{ port: number }>;
  /** SIGTERM: stop accepting, close agents with 1001, deregister them, unsubscribe. */
  drain(): Promise<void>;
  /** Same as drain; for symmetry with other resources. */
  close(): Promise<void>;
  stats(): { sockets: number; agents: number };
}

export function defaultLimits(heartbeatIntervalMs: number): GatewayLimits {
  return {
    maxPayloadBytes: 1024 * 1024,
    maxBackpressureBytes: 4 * 1024 * 1024,
    enqueueTimeoutMs: 10_000,
    registerTimeoutMs: liveness(heartbeatIntervalMs).registerTimeoutMs,
    maxPendingResults: 200_000,
    maxPendingOutput: 50_000,
    outputBufferLines: 1000,
    outputBufferTtlMs: 3600_000,
    maxBacklog: 256,
    outputBytesPerSecond: 256 * 1024,
    outputBurstBytes: 1024 * 1024,
    connectCheckWindowMs: CONNECT_CHECK_WINDOW_MS,
  };
}

/**
 * Draining's middle: results already read reach the queue and their acks go out, then every
 * socket is told to reconnect elsewhere and the registry writes in flight settle.
 */
async function closeSockets(
  table: SessionTable,
  controller: SessionController,
  forwarder: { idle(): Promise<unknown> },
  enqueueTimeoutMs: number,
  logger: Logger,
): Promise<void> {
  logger.info({ sockets: table.size }, 'gateway draining');
  await Promise.race([forwarder.idle(), new Promise((r) => setTimeout(r, enqueueTimeoutMs).unref())]);
  for (const conn of table.all()) conn.end(CloseCode.goingAway, 'gateway shutting down, reconnect');
  await controller.settled();
}

export function createGateway(opts: GatewayOptions): Gateway {
  const { config, redis } = opts;
  const id = opts.gatewayId ?? defaultGatewayId();
  const logger = opts.logger.child({ gateway: id });
  const live = liveness(config.heartbeat_interval_ms);
  const limits = { ...defaultLimits(config.heartbeat_interval_ms), ...opts.limits };
  const keys = new Keys(config.redis.prefix);
  const events = new EventEmitter<GatewayEventMap>();
  const table = new SessionTable();
  const held = openIdentity(opts, keys, logger, live.heartbeatMs);
  const admission = openAdmission(opts, logger);
  const registry = opts.registry ?? openRegistry(opts, keys, live.registryTtlMs, admission);
  const { queues, own: ownQueues, bullRedis, resultsRedis, replicas } = openGatewayQueues(opts, keys, logger);
  const forwarder = createForwarder(queues.results, id, limits, events, logger, replicas);
  const output = createOutput(redis, keys, limits, logger);
  const guard = createGuard(held.key, limits, events, logger);
  const controller = new SessionController({
    gatewayId: id,
    heartbeatIntervalMs: config.heartbeat_interval_ms,
    maxBacklog: limits.maxBacklog,
    connectCheckWindowMs: limits.connectCheckWindowMs,
    admission,
    registry,
    table,
    forwarder,
    output,
    guard,
    queues,
    inbox: new RedisGatewayInbox({ redis, keys, logger, connect: () => duplicateClient(redis) }),
    events,
    logger,
    identity: held.identity,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const delivery = new InstructionDelivery({
    gatewayId: id,
    table,
    results: queues.results,
    events,
    logger,
    draining: () => controller.draining,
    track: (p) => controller.track(p),
    sentRun: (conn, runJson) => guard.delivered(conn, runJson),
  });
  const endpoint = openEndpoint(opts, limits, controller, admission, logger, held.key);

  const subscriber = new InboxReader(
    duplicateClient(redis),
    keys.gatewayInbox(id),
    (text) => delivery.inboxRecord(text),
    logger,
    () => void recovered(),
  );
  let sweepTimer: NodeJS.Timeout | null = null;
  let draining: Promise<void> | null = null;

  const announce = () =>
    registry.announce(id, Date.now()).catch((err: unknown) => {
      logger.debug({ err: errorMessage(err) }, 'gateway announce failed');
    });
  const recovered = reannounceAfterLosses(events, redis, announce, controller, logger);

  const drain = (): Promise<void> => {
    draining ??= (async () => {
      controller.draining = true;
      held.stop();
      endpoint.stopListening();
      if (sweepTimer) clearInterval(sweepTimer);
      await closeSockets(table, controller, forwarder, limits.enqueueTimeoutMs, logger);
      await registry.retire(id).catch(() => {});
      await subscriber.stop();
      if (ownQueues) await Promise.allSettled([ownQueues.results.close(), ownQueues.reconcile.close()]);
      bullRedis?.disconnect();
      resultsRedis?.disconnect();
      logger.info('gateway drained');
    })();
    return draining;
  };

  return {
    id,
    events,
    async listen() {
      const address = parseListenAddress(config.listen_agents);
      await held.load();
      await subscriber.start();
      const port = await endpoint.listen(address.host, address.port);
      await announce();
      sweepTimer = setInterval(() => {
        controller.sweep(Date.now(), limits.registerTimeoutMs);
        void announce();
      }, live.heartbeatMs);
      sweepTimer.unref();
      return { port };
    },
    drain,
    close: drain,
    stats: () => ({ sockets: table.size, agents: table.agents }),
  };
}

/**
 * A rebuilt entry means Redis lost the registry (FLUSHALL), and the gateways hash with it: say
 * we are alive now, not at the next sweep, or the connect reconciles of the rebuilt entries find
 * this gateway gone and their instructions come back undeliverable (bench/recovery.ts).
 * A lost Cluster node may have taken instructions for this gateway's inbox (or registry writes)
 * with it: announce, then reconcile every agent here as after a connect (not while draining).
 * Returns what to do when the inbox reads again after an outage (recheckOnAnotherServer).
 */
function reannounceAfterLosses(
  events: EventEmitter<GatewayEventMap>,
  redis: RedisClient,
  announce: () => Promise<void>,
  controller: SessionController,
  logger: Logger,
): () => Promise<void> {
  let reannounced = 0;
  events.on('registry:rebuilt', () => {
    if (Date.now() - reannounced < 1000) return;
    reannounced = Date.now();
    void announce();
  });
  onClusterNodeLoss(redis, async () => {
    if (controller.draining) return;
    await announce();
    logger.warn('a Redis Cluster node was lost: re-checking every agent on this gateway');
    await controller.recheckAll();
  });
  return recheckOnAnotherServer(redis, announce, controller, logger);
}

/**
 * Reading the inbox works again after Redis was unreachable: announce at once. When Redis is
 * another server now (a Sentinel failover, a restart), writes the old one acknowledged may be gone
 * — a drift cycle's fan-out, instructions queued for this gateway — and the registry entries that
 * did survive trigger no rebuild: re-check every agent here, as after a connect (not while draining).
 */
function recheckOnAnotherServer(
  redis: RedisClient,
  announce: () => Promise<void>,
  controller: SessionController,
  logger: Logger,
): () => Promise<void> {
  let known: Promise<string | null> = redisRunId(redis);
  return async () => {
    await announce();
    const before = await known;
    const now = await redisRunId(redis);
    known = Promise.resolve(now ?? before);
    if (before === null || now === null || now === before || controller.draining) return;
    logger.warn(
      { before, now },
      'Redis is another server now (a failover or a restart): re-checking every agent on this gateway',
    );
    await controller.recheckAll();
  };
}
