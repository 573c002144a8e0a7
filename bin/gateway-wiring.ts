/**
 * The gateway half of `fluke server` and all of `fluke gateway`: the agents' WebSocket endpoint,
 * the schedule and delayed-job keepers, and the console on listen_http.
 */
import uWS from 'uWebSockets.js';
import { createMetricsRegistry } from '../console/metrics.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { GatewayMetrics } from '../gateway/gateway-metrics.js';
import type { Reconciler } from '../reconciler/reconciler.js';
import { keepPromoting } from '../store/queues/delayed-promoter.js';
import { closeQueues, createQueues } from '../store/queues/queues.js';
import { keepSchedules } from '../store/queues/schedules.js';
import { silenceUwsMark, wireConsole } from './console-wiring.js';
import type { WiringContext } from './wiring-context.js';

export interface WiredGateway {
  gateway: Gateway;
  agentsPort: number;
  httpPort: number;
}

export async function wireGateway(
  ctx: WiringContext,
  reconciler: Reconciler | null,
  gatewayId: string | undefined,
): Promise<WiredGateway> {
  const { config, redis, keys, logger, closers } = ctx;
  silenceUwsMark(); // before anything listens: no `uWebSockets: 20` header on any answer
  const metricsRegistry = createMetricsRegistry();
  const gatewayMetrics = new GatewayMetrics(metricsRegistry);
  const gateway = createGateway({
    config,
    redis,
    logger,
    metrics: gatewayMetrics,
    identityKey: ctx.identityKey,
    ...(gatewayId ? { gatewayId } : {}),
  });
  gatewayMetrics.watch(gateway);
  const agentsPort = (await gateway.listen()).port;
  closers.push({ what: 'gateway drain', run: () => gateway.drain() });

  // Gateways keep the schedules alive too, so nothing depends on a long-lived reconciler.
  const queues = reconciler?.queues ?? createQueues(redis, keys, logger);
  const stopSchedules = keepSchedules(queues, config.git.poll_interval_ms, logger);
  // And they move due delayed jobs to `wait`, which BullMQ does only inside a running worker:
  // with reconcilers run only as queue-scaled jobs, drift checks and deadlines would never start.
  const stopPromoting = keepPromoting({ redis, queues: Object.values(queues), logger });
  const http = await wireConsole(ctx, queues, metricsRegistry);
  closers.push({
    what: reconciler ? 'schedules and http listener' : 'schedules, http listener and queues',
    run: async () => {
      stopSchedules();
      stopPromoting();
      uWS.us_listen_socket_close(http.socket);
      if (!reconciler) await closeQueues(queues);
    },
  });
  return { gateway, agentsPort, httpPort: http.port };
}
