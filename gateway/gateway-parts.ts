/**
 * Parts createGateway assembles from its options alone: its default id, the gateway's own BullMQ
 * queues, the output publisher, the result forwarder that reports to the gateway's events, and
 * the agent endpoint with its token check and per-socket connections.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { bearerToken, createAgentAuthenticator } from '../shared/auth.js';
import { trustedProxies } from '../shared/client-address.js';
import { DEFAULT_IDENTITY } from '../shared/config/identity-config.js';
import { DEFAULT_REPLICA_ACK_TIMEOUT_MS } from '../shared/config/replica-ack.js';
import { QUEUE_NAMES, type QueueName } from '../shared/jobs/options.js';
import type { Keys } from '../shared/keys.js';
import { liveness } from '../shared/liveness.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode } from '../shared/protocol.js';
import { RedisEnrollments } from '../store/identity/redis-enrollments.js';
import { OutputPublisher } from '../store/output/output-publisher.js';
import { openQueue } from '../store/queues/queues.js';
import { duplicateClient, type RedisClient } from '../store/redis/client.js';
import { canWaitForReplicas, type ReplicaWait, replicaWait } from '../store/redis/replica-wait.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import { AgentAdmission } from './agent-admission.js';
import { AgentConnection } from './agent-connection.js';
import { type AgentEndpoint, createAgentEndpoint } from './agent-endpoint.js';
import type { GatewayLimits, GatewayOptions } from './gateway.js';
import { type GatewayEventMap, safeEmit } from './gateway-events.js';
import { holdIdentity, type IdentityHolder } from './gateway-identity.js';
import { type JobQueue, ResultForwarder } from './result-forwarder.js';
import { ResultGuard } from './result-guard.js';
import type { SessionController } from './session-controller.js';
import { clampIdleTimeout, uwsImplementation } from './uws.js';

type Queues = { results: JobQueue; reconcile: JobQueue };
type OpenedQueue = ReturnType<typeof openQueue>;

export interface GatewayQueues {
  queues: Queues;
  /** The queues this gateway opened (and closes on drain); null when the options gave them. */
  own: { results: OpenedQueue; reconcile: OpenedQueue } | null;
  /** Their connection, closed on drain. */
  bullRedis: RedisClient | null;
  /** The results queue's own connection (WAIT blocks the connection it runs on), closed on drain. */
  resultsRedis: RedisClient | null;
  /** Confirms on resultsRedis that a replica has the enqueued results; null: off or not ours. */
  replicas: ReplicaWait | null;
}

export function openGatewayQueues(opts: GatewayOptions, keys: Keys, logger: Logger): GatewayQueues {
  // The queues get a connection of their own: BullMQ defines its ~50 scripts on the client it is
  // given, and ioredis copies every defined script into each pipeline made on that client — which
  // made the registry's and output's many small pipelines the gateway's largest CPU cost.
  const bullRedis = opts.queues ? null : duplicateClient(opts.redis);
  // No queue defaults: every gateway job carries all its options (shared/jobs/builders.ts).
  const gatewayQueue = (name: QueueName, connection: RedisClient) =>
    openQueue(name, connection, keys, {
      defaults: null,
      onError: (err) => logger.debug({ err: err.message, queue: name }, 'queue connection error'),
    });
  const resultsRedis = bullRedis ? duplicateClient(opts.redis) : null;
  const own =
    bullRedis && resultsRedis
      ? {
          results: gatewayQueue(QUEUE_NAMES.results, resultsRedis),
          reconcile: gatewayQueue(QUEUE_NAMES.reconcile, bullRedis),
        }
      : null;
  const timeoutMs = opts.config.redis.replica_ack_timeout_ms ?? DEFAULT_REPLICA_ACK_TIMEOUT_MS;
  const replicas =
    resultsRedis && timeoutMs > 0 && canWaitForReplicas(resultsRedis)
      ? replicaWait(resultsRedis, {
          timeoutMs,
          onUnavailable: (err) =>
            logger.warn(
              { err },
              'Redis refused INFO or WAIT: results are acked without a replica confirming them',
            ),
        })
      : null;
  return { queues: opts.queues ?? (own as Queues), own, bullRedis, resultsRedis, replicas };
}

/** The admission checks (agent_limits), counting refused upgrades in the metrics if any. */
export function openAdmission(opts: GatewayOptions, logger: Logger): AgentAdmission {
  return new AgentAdmission(opts.config.agent_limits, logger, (reason) =>
    opts.metrics?.upgradeRefused(reason),
  );
}

/** The Redis registry, its known-agents history capped at `agent_limits.max_known_agents`. */
export function openRegistry(
  opts: GatewayOptions,
  keys: Keys,
  ttlMs: number,
  admission: AgentAdmission,
): RedisRegistry {
  return new RedisRegistry({
    redis: opts.redis,
    keys,
    ttlMs,
    maxKnownAgents: admission.limits.max_known_agents,
  });
}

/** `<host>-<random>`: unique per process, readable in logs and the registry. */
export function defaultGatewayId(): string {
  return `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${randomBytes(4).toString('hex')}`;
}

export function createOutput(
  redis: RedisClient,
  keys: Keys,
  limits: GatewayLimits,
  logger: Logger,
): OutputPublisher {
  return new OutputPublisher({
    redis,
    keys,
    logger,
    bufferLines: limits.outputBufferLines,
    bufferTtlMs: limits.outputBufferTtlMs,
    maxPending: limits.maxPendingOutput,
  });
}

export function createForwarder(
  results: JobQueue,
  gatewayId: string,
  limits: GatewayLimits,
  events: EventEmitter<GatewayEventMap>,
  logger: Logger,
  replicas: ReplicaWait | null = null,
): ResultForwarder {
  return new ResultForwarder({
    queue: results,
    ...(replicas ? { replicas } : {}),
    onUnreplicated: (u) => safeEmit(events, logger, 'results:unreplicated', u),
    gatewayId,
    timeoutMs: limits.enqueueTimeoutMs,
    maxPending: limits.maxPendingResults,
    logger,
    onBatch: (b) => {
      if (b.ok) safeEmit(events, logger, 'results:enqueued', { count: b.count });
      else safeEmit(events, logger, 'results:failed', { count: b.count, error: b.error ?? 'unknown' });
    },
  });
}

/** What an agent may report on: only what was issued to it, output only live and within its rate. */
export function createGuard(
  identityKey: () => Buffer | null,
  limits: GatewayLimits,
  events: EventEmitter<GatewayEventMap>,
  logger: Logger,
): ResultGuard {
  return new ResultGuard({
    identityKey,
    outputRate: { bytesPerSecond: limits.outputBytesPerSecond, burstBytes: limits.outputBurstBytes },
    events,
    logger,
  });
}

/** The `/agent` endpoint, its sockets handed to the session controller. Throws on half a TLS config. */
export function openEndpoint(
  opts: GatewayOptions,
  limits: GatewayLimits,
  controller: SessionController,
  admission: AgentAdmission,
  logger: Logger,
  identityKey: () => Buffer | null,
): AgentEndpoint {
  const { config } = opts;
  const authenticate = createAgentAuthenticator(
    { ...config, identity: config.identity ?? DEFAULT_IDENTITY },
    identityKey,
  );
  const onSlow = (conn: AgentConnection) =>
    conn.end(CloseCode.slow, 'backpressure limit: agent is not reading');
  const onSent = opts.metrics?.sent.bind(opts.metrics);
  let nextConn = 0;
  const tls =
    config.tls.enabled && config.tls.cert_file && config.tls.key_file
      ? { cert_file: config.tls.cert_file, key_file: config.tls.key_file }
      : null;
  if (config.tls.enabled && !tls) throw new Error('server.tls.enabled needs tls.cert_file and tls.key_file');

  const implementation = uwsImplementation();
  if (implementation === 'fallback') {
    logger.warn('uWebSockets.js native binary did not load; using the slower ws fallback');
  } else {
    logger.info({ uws: implementation }, 'uWebSockets.js implementation loaded');
  }

  const trusted = config.http?.trusted_proxies ?? [];
  if (tls && trusted.length > 0) {
    // uWS reads a PROXY header only inside TLS, and TCP balancers send it before the handshake.
    logger.info(
      'TLS is on: client addresses come from X-Forwarded-For of trusted_proxies (an HTTP balancer); a balancer sending PROXY v2 in front of TLS breaks every connection',
    );
  }
  return createAgentEndpoint({
    tls,
    maxPayloadBytes: limits.maxPayloadBytes,
    idleTimeoutSeconds: clampIdleTimeout(liveness(config.heartbeat_interval_ms).idleTimeoutSeconds),
    maxBackpressureBytes: limits.maxBackpressureBytes,
    logger,
    trustedProxies: trustedProxies(trusted),
    handlers: {
      throttled: (remote) => admission.throttled(remote, Date.now()),
      authorize: (header, remote) => {
        const decision = authenticate(bearerToken(header));
        if (!decision.ok) {
          const why =
            decision.code === 'credential_rejected' ? decision.code : header ? 'bad_token' : 'missing_token';
          admission.refusedUpgrade(remote, why, Date.now());
        }
        return decision;
      },
      accepting: () => !controller.draining,
      create: (auth, remote) =>
        new AgentConnection(++nextConn, auth, remote, Date.now(), logger, onSlow, onSent),
      open: (conn) => controller.opened(conn),
      message: (conn, frame) => controller.message(conn, frame),
      close: (conn, code, reason) => controller.closed(conn, code, reason),
    },
  });
}

/** The identity key (given by the process wiring, or loaded at listen) and the enrollment records. */
export function openIdentity(
  opts: GatewayOptions,
  keys: Keys,
  logger: Logger,
  heartbeatMs: number,
): IdentityHolder {
  return holdIdentity({
    config: opts.config.identity ?? DEFAULT_IDENTITY,
    tokens: opts.config,
    enrollments: opts.enrollments ?? new RedisEnrollments(opts.redis, keys),
    given: opts.identityKey ?? null,
    redis: opts.redis,
    keys,
    logger,
    intervalMs: heartbeatMs,
  });
}
