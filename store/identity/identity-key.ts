/**
 * The identity key: the HMAC key of agent credentials (and instruction ids). Configured
 * (`server.identity.key`, derived here) it survives anything that happens to Redis. Not
 * configured, it is a random 32-byte key kept in Redis under `keys.identityKey()`: the first
 * process creates it (SET NX) and every other one reads it back; each process re-asserts it
 * periodically (`keepIdentityKey`) so a FLUSHALL does not silently rotate it while processes run.
 */
import { randomBytes } from 'node:crypto';
import { deriveIdentityKey } from '../../shared/identity/agent-credential.js';
import type { Keys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../redis/client.js';

const KEY_BYTES = 32;

function decode(text: string | null): Buffer | null {
  if (text === null) return null;
  const key = Buffer.from(text, 'base64');
  return key.length === KEY_BYTES ? key : null;
}

/** SET NX `candidate`, then read back what Redis holds (ours, or the one another process set first). */
async function assertKey(redis: RedisClient, keys: Keys, candidate: Buffer): Promise<Buffer> {
  const [, [, stored]] = (await redis
    .multi()
    .set(keys.identityKey(), candidate.toString('base64'), 'NX')
    .get(keys.identityKey())
    .exec()) as [[Error | null, unknown], [Error | null, string | null]];
  const key = decode(stored);
  if (!key)
    throw new Error(`${keys.identityKey()} in RedisClient does not hold a ${KEY_BYTES}-byte base64 key`);
  return key;
}

export async function ensureIdentityKey(
  redis: RedisClient,
  keys: Keys,
  configured: string | null,
): Promise<Buffer> {
  if (configured !== null) return deriveIdentityKey(configured);
  return assertKey(redis, keys, randomBytes(KEY_BYTES));
}

/**
 * Every `intervalMs`, put the key back if Redis lost it; if Redis holds another one (another
 * process re-created it first after a flush), adopt that one in place — the Buffer is shared by
 * everything that verifies — and warn. Does nothing for a configured key. Returns a stop function.
 */
export function keepIdentityKey(opts: {
  redis: RedisClient;
  keys: Keys;
  key: Buffer;
  configured: boolean;
  logger: Logger;
  intervalMs: number;
}): () => void {
  const { redis, keys, key, logger } = opts;
  if (opts.configured) return () => {};
  const timer = setInterval(() => {
    assertKey(redis, keys, key)
      .then((stored) => {
        if (stored.equals(key)) return;
        stored.copy(key);
        logger.warn(
          'the identity key in RedisClient changed under this process (RedisClient lost it and another process set a new one); adopted it: agents enrolled before re-enroll with their bootstrap token. Set server.identity.key to avoid this',
        );
      })
      .catch((err: unknown) => {
        logger.debug({ err: err instanceof Error ? err.message : String(err) }, 'identity key check failed');
      });
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
