/**
 * A private redis-server for a test file: a free port, a temp dir, no persistence,
 * `maxmemory-policy noeviction` as BullMQ needs. `REDIS_URL` set → use it with a unique prefix instead.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { spawnRedisServer, waitForRedis } from '../bin/redis-server.js';

export interface TestRedis {
  url: string;
  port: number;
  /** A unique key prefix for this test file. */
  prefix: string;
  /** A fresh client (closed by stop()). */
  client(): Redis;
  /** kill -9 the server (private servers only). */
  kill(): Promise<void>;
  /** Start it again on the same port (private servers only). */
  restart(): Promise<void>;
  /** Send a signal to the server (private servers only): SIGSTOP freezes it, SIGCONT resumes it. */
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRedis(): Promise<TestRedis> {
  const prefix = `fluke-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const clients: Redis[] = [];
  const makeClient = (url: string) => () => {
    const c = new Redis(url, { maxRetriesPerRequest: null });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const external = process.env.REDIS_URL;
  if (external) {
    return {
      url: external,
      port: Number(new URL(external).port || 6379),
      prefix,
      client: makeClient(external),
      kill: async () => {
        throw new Error('cannot kill an external REDIS_URL server');
      },
      restart: async () => {
        throw new Error('cannot restart an external REDIS_URL server');
      },
      signal: () => {
        throw new Error('cannot signal an external REDIS_URL server');
      },
      stop: async () => {
        const c = new Redis(external);
        const keys = await c.keys(`${prefix}*`);
        if (keys.length > 0) await c.del(...keys);
        c.disconnect();
        for (const k of clients) k.disconnect();
      },
    };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | null = null;
  const launch = async () => {
    proc = spawnRedisServer(port, dir);
    await waitForRedis(url);
  };
  await launch();
  const kill = async () => {
    const p = proc;
    // Killed by a signal: exitCode stays null and 'exit' has already fired.
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  return {
    url,
    port,
    prefix,
    client: makeClient(url),
    kill,
    restart: launch,
    signal: (sig) => {
      const p = proc as ChildProcess | null;
      if (p && p.exitCode === null) p.kill(sig);
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
