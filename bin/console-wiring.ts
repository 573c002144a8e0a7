/**
 * The console on listen_http: one router and one auth for every part of it (HTTP API, web UI,
 * Bull Board, /metrics); each part mounts its routes on the router and checks with the auth.
 */
import uWS from 'uWebSockets.js';
import { createConsoleAuth } from '../console/auth.js';
import { mountBullBoard } from '../console/bull-board.js';
import { mountConsoleApi } from '../console/console-api.js';
import { hostPolicy } from '../console/http-guard.js';
import { mountRouter } from '../console/http-server.js';
import { type createMetricsRegistry, mountMetrics } from '../console/metrics.js';
import { Router } from '../console/router.js';
import { mountUi } from '../console/static.js';
import { trustedProxies } from '../shared/client-address.js';
import { parseListenAddress } from '../shared/config/listen-address.js';
import { resolveReadAccess } from '../shared/config/read-access.js';
import { renderClusterMetrics } from '../shared/metrics.js';
import { readClusterMetrics } from '../store/metrics/metrics-recorder.js';
import { boardQueues } from '../store/queues/board.js';
import type { Queues } from '../store/queues/queues.js';
import type { WiringContext } from './wiring-context.js';

export interface ListeningHttp {
  port: number;
  socket: uWS.us_listen_socket;
}

export async function wireConsole(
  ctx: WiringContext,
  queues: Queues,
  metricsRegistry: ReturnType<typeof createMetricsRegistry>,
): Promise<ListeningHttp> {
  const { config, redis, keys, events, eviction, logger, closers } = ctx;
  const readAccess = resolveReadAccess(config.api_read_access, config.listen_http);
  logger.info(
    { api_read_access: readAccess.access },
    `reads ${readAccess.access === 'open' ? 'are open' : 'need an API token'}: ${readAccess.reason}`,
  );
  if (readAccess.access === 'token' && config.api_tokens.length === 0)
    logger.warn('reads need an API token but no api_tokens are configured: nobody can read the console');
  const consoleAuth = createConsoleAuth({ apiTokens: config.api_tokens, readAccess: readAccess.access });
  const router = new Router();
  const api = mountConsoleApi(router, {
    config,
    redis,
    keys,
    events,
    queues,
    auth: consoleAuth,
    logger,
    evictionProblem: () => eviction.problem(),
  });
  closers.push({ what: 'console api', run: async () => api.close() });
  const app = config.tls.enabled
    ? uWS.SSLApp({ cert_file_name: config.tls.cert_file ?? '', key_file_name: config.tls.key_file ?? '' })
    : uWS.App();
  const guard = {
    policy: hostPolicy(config.http.allowed_hosts, parseListenAddress(config.listen_http).host),
    tls: config.tls.enabled,
  };
  mountUi(router, { logger }); // the web UI at / (console/ui/)
  // Bull Board at /queues and Prometheus /metrics, behind the API's read/write checks.
  mountBullBoard(router, {
    queues: (readOnly) => boardQueues(Object.values(queues), readOnly),
    auth: consoleAuth,
    guard,
    logger,
  });
  mountMetrics(router, {
    auth: consoleAuth,
    registry: metricsRegistry,
    queues,
    eventsSize: () => events.size(),
    problems: () => api.statuses.listProblems(),
    cluster: async () => renderClusterMetrics(await readClusterMetrics(redis, keys)),
    evictionPolicyOk: () => eviction.problem() === null,
    logger,
  });
  silenceUwsMark();
  mountRouter(app, {
    router,
    maxBodyBytes: 64 * 1024,
    logger,
    guard,
    trustedProxies: trustedProxies(config.http.trusted_proxies),
  });
  return listenHttp(app, config.listen_http);
}

/**
 * uWS adds `uWebSockets: 20` to every HTTP response unless its loop is set "silent" through the
 * library's undocumented `_cfg` (the native build's only runtime switch for it; the JS fallback has none
 * and sends no such header). Process-wide: the agent endpoint's answers lose it too.
 */
export function silenceUwsMark(): void {
  const cfg = (uWS as unknown as { _cfg?: (key: string) => void })._cfg;
  if (typeof cfg === 'function') cfg('silent');
}

function listenHttp(app: uWS.TemplatedApp, address: string): Promise<ListeningHttp> {
  const { host, port } = parseListenAddress(address);
  return new Promise((resolve, reject) => {
    app.listen(host || '0.0.0.0', port, (socket) => {
      if (!socket) reject(new Error(`cannot listen on ${address} (listen_http)`));
      else resolve({ port: uWS.us_socket_local_port(socket), socket });
    });
  });
}
