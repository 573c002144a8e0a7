/**
 * The server's identity key: the HMAC key instruction ids are tagged with
 * (shared/identity/instruction-tag.ts), the same in every gateway and reconciler of a cluster.
 * Stand-in: without a configured key, 32 random bytes are kept in Redis (SET NX, then GET), so
 * every process of a cluster reads the one the first of them wrote.
 */
import { randomBytes } from 'node:crypto';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';

export async function ensureIdentityKey(
  redis: RedisClient,
  keys: Keys,
  configured: string | null,
): Promise<Buffer> {
  if (configured !== null) return Buffer.from(configured, 'utf8');
  const key = keys.identityKey();
  await redis.set(key, randomBytes(32).toString('base64'), 'NX');
  const stored = await redis.get(key);
  if (!stored) throw new Error(`identity key ${key} vanished right after it was set`);
  return Buffer.from(stored, 'base64');
}
