/**
 * Reconnect delays. Full jitter (delay uniform in [0, min(cap, base·2^attempt)]) spreads a fleet of
 * agents that lost the same gateway, so they do not all come back in the same millisecond.
 */

/** Delay before reconnect attempt number `attempt` (0 = the first retry). `random` returns [0, 1). */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  // 2^attempt overflows to Infinity long after it passed any sane cap; clamp the exponent anyway.
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 52));
  return Math.floor(random() * ceiling);
}

/**
 * After a refusal (bad token, scope) retrying fast only adds load: wait between half the cap and the
 * cap, still jittered so refused agents do not synchronise.
 */
export function refusalDelay(capMs: number, random: () => number = Math.random): number {
  return Math.floor(capMs / 2 + (random() * capMs) / 2);
}
