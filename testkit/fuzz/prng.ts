/**
 * A small seeded PRNG (mulberry32) for the fuzzers: the same seed gives the same inputs, so a
 * failure reproduces. The seed comes from `FLUKE_FUZZ_SEED` when set, else from the clock, and
 * every runner prints it.
 */
export interface Rng {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A child generator: reproducible from this one, independent afterwards. */
  fork(): Rng;
}

export function rng(seed: number): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    seed: seed >>> 0,
    next,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(items.length)] as T;
    },
    fork: () => rng(int(0xffffffff)),
  };
}

/** The seed to use: `FLUKE_FUZZ_SEED` (decimal) when set and valid, else a fresh one. */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env, fallback = Date.now()): number {
  const raw = env.FLUKE_FUZZ_SEED;
  if (raw !== undefined && /^\d+$/.test(raw.trim())) return Number(raw.trim()) >>> 0;
  return fallback >>> 0;
}

/** A count from the environment (`FLUKE_FUZZ_FRAMES`, …), else the default. */
export function countFromEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return fallback;
  return Number(raw.trim());
}
