/**
 * The HTTP API alone, for route tests: a private Redis, a config parsed from real HCL, the API
 * wired as `fluke server` wires it (console/console-api.ts) on a uWS app listening on port 0, and
 * the stores to seed data with. No gateway, no reconciler, no agents.
 */

import uWS from 'uWebSockets.js';
import pino from 'pino';
import { createConsoleAuth } from '../../console/auth.js';
import { mountConsoleApi } from '../../console/console-api.js';
import { mountRouter } from '../../console/http-server.js';
import { Router } from '../../console/router.js';
import { parseServerConfig } from '../../shared/config/load.js';
import { resolveReadAccess } from '../../shared/config/read-access.js';
import type { ServerConfig } from '../../shared/config/types.js';
import { Keys } from '../../shared/keys.js';
import { RedisEventStore } from '../../store/events/redis-event-store.js';
import { closeQueues, createQueues, type Queues } from '../../store/queues/queues.js';
import { startRedis, type TestRedis } from '../../testkit/redis.js';
import { serverHcl } from '../../testkit/system.js';

export { API_TOKEN } from '../../testkit/system.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ApiServer {
  url(path: string): string;
  redis: TestRedis;
  keys: Keys;
  config: ServerConfig;
  queues: Queues;
  events: RedisEventStore;
  /** Stops listening and closes the API (what shutting the gateway down does); idempotent. */
  close(): void;
}

export interface ApiServerOptions {
  readAccess?: 'open' | 'token';
  webhookSecret?: string;
  maxStreams?: number;
  streamPingMs?: number;
}

export async function startApiServer(t: Teardown, options: ApiServerOptions = {}): Promise<ApiServer> {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  let hcl = serverHcl({
    agentsPort: 1,
    httpPort: 1,
    redisUrl: redis.url,
    prefix: redis.prefix,
    repo: '/nonexistent',
    pollInterval: '1h',
    heartbeat: '1s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore: 'redis',
  });
  if (options.readAccess) {
    hcl = hcl.replace(/(api_tokens\s*=.*\n)/, `$1  api_read_access = "${options.readAccess}"\n`);
  }
  if (options.webhookSecret) {
    hcl = hcl.replace(/(poll_interval\s*=.*\n)/, `$1    webhook_secret = "${options.webhookSecret}"\n`);
  }
  const config = await parseServerConfig('server.hcl', hcl, {});
  const keys = new Keys(config.redis.prefix);
  const client = redis.client();
  const queues = createQueues(client, keys);
  t.teardown(() => closeQueues(queues));
  const events = new RedisEventStore({ redis: client, keys, ttlMs: 3600_000 });
  const router = new Router();
  const logger = pino({ level: 'silent' });
  const api = mountConsoleApi(router, {
    config,
    redis: client,
    keys,
    events,
    queues,
    auth: createConsoleAuth({
      apiTokens: config.api_tokens,
      readAccess: resolveReadAccess(config.api_read_access, config.listen_http).access,
    }),
    logger,
    ...(options.maxStreams !== undefined ? { maxStreams: options.maxStreams } : {}),
    ...(options.streamPingMs !== undefined ? { streamPingMs: options.streamPingMs } : {}),
  });
  const app = uWS.App();
  mountRouter(app, { router, maxBodyBytes: 64 * 1024, logger });
  const { port, socket } = await new Promise<{ port: number; socket: uWS.us_listen_socket }>(
    (resolve, reject) => {
      app.listen('127.0.0.1', 0, (s) => {
        if (s) resolve({ port: uWS.us_socket_local_port(s), socket: s });
        else reject(new Error('cannot listen'));
      });
    },
  );
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    uWS.us_listen_socket_close(socket);
    api.close();
  };
  t.teardown(close);
  return { url: (path) => `http://127.0.0.1:${port}${path}`, redis, keys, config, queues, events, close };
}
