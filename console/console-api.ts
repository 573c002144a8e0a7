/**
 * Wiring of the HTTP API (`/api/v1`) for `fluke server` and `fluke gateway`: builds its stores on
 * the API's own Redis connections and mounts the routes on the console router that the web UI,
 * Bull Board and /metrics share (with the same ConsoleAuth).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ServerConfig } from '../shared/config/types.js';
import { fanoutJob, pushPollJob } from '../shared/jobs/builders.js';
import type { Keys } from '../shared/keys.js';
import { liveness } from '../shared/liveness.js';
import { RedisStateStore } from '../store/desired-state/redis-state-store.js';
import type { EventStore } from '../store/events/event-store.js';
import { RedisEnrollments } from '../store/identity/redis-enrollments.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { ChannelHub } from '../store/output/channel-hub.js';
import { RedisOutputLog } from '../store/output/redis-output.js';
import { addJob, type Queues } from '../store/queues/queues.js';
import { duplicateClient, type RedisClient } from '../store/redis/client.js';
import { RedisAgentDirectory } from '../store/registry/redis-agent-directory.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import type { RunTarget } from '../store/runs/run-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import { createApiRouter } from './api.js';
import { DEFAULT_MAX_STREAMS, OpenStreams, STREAM_PING_MS } from './api-executions.js';
import type { ConsoleAuth } from './auth.js';
import type { Router } from './router.js';

export interface ConsoleApiOptions {
  config: ServerConfig;
  redis: RedisClient;
  keys: Keys;
  events: EventStore;
  queues: Queues;
  auth: ConsoleAuth;
  logger: Logger;
  /** The eviction-policy problem last found (store/redis/eviction-watch.ts); /readyz reports it. */
  evictionProblem?: () => string | null;
  /** Tests lower these. */
  maxStreams?: number;
  maxStreamsPerClient?: number;
  streamPingMs?: number;
}

/**
 * Mounts the API on `router`; close() releases its connections. Returns its status store too, so
 * the rest of the console (/metrics) reads through the same auto-pipelined connection.
 */
export function mountConsoleApi(
  router: Router,
  o: ConsoleApiOptions,
): { statuses: RedisStatusStore; close(): void } {
  const { config, keys, queues } = o;
  // Its own connection, not auto-pipelined: ioredis's auto-pipelining mis-delivers replies when
  // a script in the batch answers NOSCRIPT (the directory's prune script on a fresh Redis), and
  // throws out of its callback — a crash seen in CI. The list routes pipeline their reads.
  const redis = duplicateClient(o.redis);
  redis.on('error', () => {}); // the main client logs an outage once
  // Live output viewers share one subscriber connection, made when the first one arrives.
  const hub = new ChannelHub(() => duplicateClient(o.redis), o.logger);
  const output = new RedisOutputLog({ redis, keys, hub });
  const streams = new OpenStreams(o.maxStreams ?? DEFAULT_MAX_STREAMS, o.maxStreamsPerClient);
  const runs = new RedisRunStore({ redis, keys });
  const instructions = new RedisInstructionStore({ redis, keys });
  const statuses = new RedisStatusStore({ redis, keys, ttlMs: config.event_store.redis.ttl_ms });
  createApiRouter(
    {
      auth: o.auth,
      directory: new RedisAgentDirectory({
        redis,
        keys,
        staleAfterMs: liveness(config.heartbeat_interval_ms).gatewayStaleMs,
        knownForMs: config.event_store.redis.ttl_ms,
      }),
      statuses,
      events: o.events,
      state: new RedisStateStore({ redis, keys }),
      enrollments: new RedisEnrollments(redis, keys),
      runs,
      defaultPolicy: config.drift.policy,
      requestReconcile: async (target: RunTarget) => {
        const id = randomUUID();
        await runs.create({
          id,
          target: target.target,
          name: 'name' in target ? target.name : null,
          created_at: new Date().toISOString(),
        });
        await addJob(
          queues.reconcile,
          fanoutJob({
            trigger: 'manual',
            run_id: id,
            task: target.target === 'task' ? target.name : null,
            agent: target.target === 'agent' ? target.name : null,
          }),
        );
        return id;
      },
      ping: async () => (await o.redis.ping()) === 'PONG',
      ...(o.evictionProblem ? { evictionProblem: o.evictionProblem } : {}),
      executions: {
        sources: {
          readRecords: (id, lastOnly) => output.replay(id, lastOnly),
          instruction: (id) => instructions.get(id),
          event: (agent, id) => o.events.get(agent, id),
        },
        stream: {
          subscribe: (channel, listener) => hub.subscribe(channel, listener),
          channelOf: (id) => keys.outputChannel(id),
          pingMs: o.streamPingMs ?? STREAM_PING_MS,
          subscribeTimeoutMs: 10_000,
          logger: o.logger,
        },
        streams,
      },
      webhook: {
        secret: config.git.webhook_secret ?? null,
        branch: config.git.branch,
        requestPoll: async (push) => {
          await addJob(queues.poll, pushPollJob(push.after));
        },
        logger: o.logger,
      },
    },
    router,
  );
  return {
    statuses,
    close() {
      streams.endAll();
      hub.close();
      redis.disconnect();
    },
  };
}
