/**
 * A cluster-wide single-flight lock on one key: `fn` runs only where the SET NX won. The lock
 * expires on its own, so a killed holder blocks others for at most `lockMs`.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from './client.js';

/** Deletes the key only if it still holds our token (it may have expired and been taken since). */
const RELEASE_IF_OURS =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** Runs `fn` unless another holder has `key`; resolves to null when skipped. */
export async function singleFlight<T>(
  redis: RedisClient,
  key: string,
  lockMs: number,
  fn: () => Promise<T>,
): Promise<T | null> {
  const token = randomUUID();
  if ((await redis.set(key, token, 'PX', lockMs, 'NX')) !== 'OK') return null;
  try {
    return await fn();
  } finally {
    await redis.eval(RELEASE_IF_OURS, 1, key, token);
  }
}
