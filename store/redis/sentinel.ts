/**
 * The ioredis options of a client that follows a Sentinel-watched master: the Sentinels find the
 * master, and every client duplicated from it (BullMQ's workers duplicate theirs) carries the same
 * options, so it follows the master too. Credentials, database and TLS still come from
 * `server.redis.url`; its host:port is not used.
 */
import type { RedisOptions } from 'ioredis';
import { parseHostPort } from '../../shared/config/redis-topology.js';
import type { RedisConfig } from '../../shared/config/types.js';

/** Between rounds over all Sentinels while none answers (ioredis retries forever). */
export const SENTINEL_RETRY_MAX_MS = 1_000;

/** A READONLY reply: this connection reaches a master that was demoted to a replica. */
export function isReadOnlyError(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

/** The options for `new Redis(options)`, or null when `redis` names no Sentinels. */
export function sentinelOptions(
  redis: Pick<RedisConfig, 'url' | 'sentinels' | 'master_name' | 'sentinel_password'>,
): RedisOptions | null {
  if (redis.sentinels.length === 0 || redis.master_name === null) return null;
  const url = new URL(redis.url);
  const tls = url.protocol === 'rediss:';
  const db = Number(url.pathname.replace(/^\//, '') || '0');
  return {
    sentinels: redis.sentinels.map((s) => {
      const hp = parseHostPort(s);
      if (!hp) throw new Error(`server.redis.sentinels: not host:port: ${JSON.stringify(s)}`);
      return hp;
    }),
    name: redis.master_name,
    role: 'master',
    ...(redis.sentinel_password !== null ? { sentinelPassword: redis.sentinel_password } : {}),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    // rediss://: TLS to the master and to the Sentinels alike (ioredis needs both flags for the master).
    ...(tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
    // No failover detector (a +switch-master subscription per connection): Sentinel itself closes
    // the connections of a master it demotes (CLIENT KILL TYPE normal/pubsub), a dead master's
    // close theirs, and READONLY below catches the rest. The detector would add up to 10 Sentinel
    // connections per client, and ioredis leaves them reconnecting after quit().
    failoverDetector: false,
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, SENTINEL_RETRY_MAX_MS),
    // Still talking to a demoted master: reconnect (the Sentinels name the new one) and fail the
    // command. Not re-sent (2): a command of a MULTI re-sent alone would run outside its
    // transaction; callers already treat a failed command as retryable (jobs retry, the gateway
    // does not ack and the agent re-sends).
    reconnectOnError: (err: Error) => (isReadOnlyError(err) ? 1 : false),
  };
}
