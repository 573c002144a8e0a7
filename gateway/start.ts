/**
 * Process wiring for `fluke gateway` / `fluke server`: builds the real Redis client from config,
 * refuses a Redis that may evict (BullMQ and the registry need `noeviction`), listens, and drains
 * on SIGTERM/SIGINT. Everything else takes its dependencies as arguments.
 */
import { Redis } from 'ioredis';
import type { ServerConfig } from '../shared/config/types.js';
import type { Logger } from '../shared/logger.js';
import { createGateway, type Gateway } from './gateway.js';

export async function assertNoEviction(redis: Redis): Promise<void> {
  const info = await redis.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy && policy !== 'noeviction') {
    throw new Error(
      `Redis maxmemory-policy is "${policy}"; Fluke needs "noeviction" (BullMQ jobs and registry entries must never be evicted)`,
    );
  }
}

export async function startGateway(
  config: ServerConfig,
  logger: Logger,
): Promise<{ gateway: Gateway; port: number; stop(): Promise<void> }> {
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  let lost = false;
  redis.on('error', (err: Error) => {
    if (!lost) logger.warn({ err: err.message }, 'redis connection lost');
    lost = true;
  });
  redis.on('ready', () => {
    if (lost) logger.info('redis connection restored');
    lost = false;
  });
  await assertNoEviction(redis);
  const gateway = createGateway({ config, redis, logger });
  const { port } = await gateway.listen();
  const stop = async () => {
    await gateway.drain();
    redis.disconnect();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    void stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return { gateway, port, stop };
}
