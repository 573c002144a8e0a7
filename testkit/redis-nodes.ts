/**
 * What testkit/redis-cluster.ts and testkit/redis-sentinel.ts both need to drive their private
 * Redis processes: distinct free ports, a one-shot direct connection to one node, polling until a
 * condition holds, and kill -9 that waits for the process to be gone.
 */
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './redis.js';
import { waitFor } from './system.js';

/** `n` free loopback ports, no two the same. */
export async function distinctPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  return ports;
}

function direct(port: number): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  c.on('error', () => {});
  return c;
}

/** `fn` on a fresh connection to the node on `port` (no retries), closed afterwards. */
export async function ask<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = direct(port);
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** Waits (testkit/system.ts waitFor) until `check` holds; a throw counts as false. */
export async function until(
  who: string,
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  await waitFor(`${who}: ${what}`, check, Boolean, timeoutMs);
}

/** Whether the process is still running. */
export function running(p: ChildProcess | undefined): boolean {
  return p?.exitCode === null && p?.signalCode === null;
}

/** kill -9 and wait for the exit; nothing if it is not running. */
export async function killNow(p: ChildProcess | undefined): Promise<void> {
  if (!p || !running(p)) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}
