/**
 * The eviction policy checked again while the process runs, not only at start: a
 * `CONFIG SET maxmemory-policy allkeys-lru` on a live Redis would otherwise go unnoticed until
 * BullMQ jobs vanish. Every `intervalMs` each client's server is asked (checkEvictionPolicy: on a
 * Redis Cluster every master the client knows now, so a promoted replica is asked too); a
 * wrong policy is logged as an error when found and then again at most every `logEveryMs` while
 * it stays wrong, and kept as `problem()` (the console's /readyz and its gauge read it). A check
 * that cannot run (Redis down, slow) changes nothing: the PING of /readyz reports an outage.
 */
import type { Logger } from 'pino';
import { coerceError } from '../../shared/errors.js';
import { withTimeout } from '../../shared/with-timeout.js';
import { checkEvictionPolicy, type RedisClient } from './client.js';

/** How often the policy is checked again. */
export const EVICTION_CHECK_MS = 60_000;
/** While the policy stays wrong, the error is logged again at most this often. */
export const EVICTION_LOG_EVERY_MS = 10 * 60_000;

export interface EvictionWatchOptions {
  /** The process's Redis servers (the main one, and the event store's when separate). */
  clients: readonly RedisClient[];
  logger: Logger;
  intervalMs?: number;
  logEveryMs?: number;
  /** One check's bound (default 5 s). */
  timeoutMs?: number;
}

export interface EvictionWatch {
  /** The problem last found, or null when every server was fit (or could not be asked). */
  problem(): string | null;
  /** Runs one check now (tests, and the first check at start). */
  check(): Promise<void>;
  stop(): void;
}

export function watchEvictionPolicy(o: EvictionWatchOptions): EvictionWatch {
  const logEveryMs = o.logEveryMs ?? EVICTION_LOG_EVERY_MS;
  const timeoutMs = o.timeoutMs ?? 5000;
  let problem: string | null = null;
  let loggedAt = 0;
  let running: Promise<void> | null = null;

  const checkAll = async (): Promise<void> => {
    let found: string | null = null;
    for (const client of o.clients) {
      try {
        found ??= await withTimeout(checkEvictionPolicy(client), timeoutMs, 'eviction policy check');
      } catch (err) {
        o.logger.debug({ err: coerceError(err).message }, 'eviction policy check could not run');
        return; // unknown: keep what was last found
      }
    }
    const now = Date.now();
    if (found !== null && (problem === null || now - loggedAt >= logEveryMs)) {
      o.logger.error({ problem: found }, 'redis eviction policy is unsafe: not ready until it is fixed');
      loggedAt = now;
    } else if (found === null && problem !== null) {
      o.logger.info('redis eviction policy is noeviction again');
    }
    problem = found;
  };
  const check = (): Promise<void> => {
    running ??= checkAll().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => void check(), o.intervalMs ?? EVICTION_CHECK_MS);
  timer.unref();
  return {
    problem: () => problem,
    check,
    stop: () => clearInterval(timer),
  };
}
