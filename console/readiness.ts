/**
 * `GET /readyz`: ready when Redis answers PING within `READY_TIMEOUT_MS` and its eviction policy
 * was last found fit. A frozen Redis holds a PING forever; the probe answers 503 in time instead,
 * and probes that arrive meanwhile share the one PING still waiting rather than pile up more.
 */
import { withTimeout } from '../shared/with-timeout.js';

/** How long /readyz waits for PONG before answering 503 "redis not answering". */
export const READY_TIMEOUT_MS = 1000;

export const REDIS_NOT_ANSWERING = 'redis not answering';

export interface ReadinessOptions {
  /** True on PONG. */
  ping(): Promise<boolean>;
  /** The eviction-policy problem last found (store/redis/eviction-watch.ts), or null. */
  evictionProblem?: () => string | null;
  timeoutMs?: number;
}

/** Returns the check: null when ready, else the reason it is not. */
export function readinessCheck(o: ReadinessOptions): () => Promise<string | null> {
  const timeoutMs = o.timeoutMs ?? READY_TIMEOUT_MS;
  let inFlight: Promise<boolean> | null = null;
  return async () => {
    if (!inFlight) {
      const started = o.ping().catch(() => false);
      inFlight = started;
      void started.finally(() => {
        if (inFlight === started) inFlight = null;
      });
    }
    const answered = await withTimeout(inFlight, timeoutMs, 'redis ping').catch(() => false);
    if (!answered) return REDIS_NOT_ANSWERING;
    return o.evictionProblem?.() ?? null;
  };
}
