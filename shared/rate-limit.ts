/**
 * Token buckets keyed by a string (a source address, a token grant), pure: the caller passes the
 * clock. The table is bounded: past `maxKeys` the least recently used key is forgotten, which only
 * ever gives that key a full bucket again, so an attacker with many addresses costs a bounded
 * amount of memory and gains at most a fresh burst per forgotten address.
 */

export interface RateLimit {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Bucket size: what may arrive at once after a quiet period. */
  burst: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys: number,
  ) {}

  /** Takes one token for `key` at `now` (ms), or says how long until one is there. */
  take(key: string, now: number): TakeResult {
    const { ratePerSecond, burst } = this.limit;
    const bucket = this.buckets.get(key);
    let tokens = burst;
    if (bucket) {
      tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) * ratePerSecond) / 1000);
      // Re-inserted below: Map order is then least recently used first.
      this.buckets.delete(key);
    }
    if (tokens >= 1) {
      this.remember(key, { tokens: tokens - 1, at: now });
      return { ok: true };
    }
    this.remember(key, { tokens, at: now });
    return { ok: false, retryAfterMs: Math.ceil(((1 - tokens) * 1000) / ratePerSecond) };
  }

  /** Would `key` be refused now? Does not take a token. */
  empty(key: string, now: number): boolean {
    const bucket = this.buckets.get(key);
    if (!bucket) return false;
    return bucket.tokens + (Math.max(0, now - bucket.at) * this.limit.ratePerSecond) / 1000 < 1;
  }

  get size(): number {
    return this.buckets.size;
  }

  private remember(key: string, bucket: Bucket): void {
    this.buckets.set(key, bucket);
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
  }
}

/**
 * At most one line per key per `intervalMs`, carrying how many events it stands for: the first
 * event of a key is reported at once, the ones after it within the interval are counted into the
 * next report. Bounded like TokenBuckets.
 */
export class ThrottledReport {
  private readonly seen = new Map<string, { count: number; reportedAt: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys: number,
  ) {}

  /** Counts one event; returns the count to report now, or null to stay quiet. */
  note(key: string, now: number): number | null {
    const entry = this.seen.get(key);
    if (entry && now - entry.reportedAt < this.intervalMs) {
      entry.count++;
      return null;
    }
    const count = (entry?.count ?? 0) + 1;
    this.seen.delete(key);
    this.seen.set(key, { count: 0, reportedAt: now });
    while (this.seen.size > this.maxKeys) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
    return count;
  }
}
