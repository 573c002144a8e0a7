/**
 * One private Redis for a store test file's Redis half: its client, and a fresh key prefix per
 * store so the contract's cases never see each other's keys.
 */
import type { Test } from 'tap';
import { Keys } from '../../shared/keys.js';
import { startRedis } from '../../testkit/redis.js';

export async function storeRedis(t: Test) {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  let n = 0;
  return { redis, client: redis.client(), freshKeys: () => new Keys(`${redis.prefix}-${n++}`) };
}
