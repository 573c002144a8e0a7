/**
 * A private `redis-server` (for `fluke dev` and the tests): no persistence, `noeviction` as BullMQ
 * needs, bound to 127.0.0.1 on the given port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRedis } from '../store/redis/client.js';

export function spawnRedisServer(
  port: number,
  dir: string,
  options: { detached?: boolean; extraArgs?: string[] } = {},
): ChildProcess {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  args.push('--maxmemory-policy', 'noeviction', '--loglevel', 'warning', ...(options.extraArgs ?? []));
  return spawn('redis-server', args, { stdio: 'ignore', detached: options.detached ?? false });
}

/** Resolves once `url` answers PING; rejects after `timeoutMs`. */
export async function waitForRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = createRedis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      if (Date.now() > deadline) throw new Error(`redis at ${url} did not come up`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
