/**
 * Go-style durations ("500ms", "30s", "5m", "168h", "1h30m", "1.5h") to milliseconds, as
 * `time.ParseDuration` reads them, so operators can reuse what they know from Go tools.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

export class DurationError extends Error {
  constructor(text: string, why: string) {
    super(`invalid duration ${JSON.stringify(text)}: ${why} (examples: "500ms", "30s", "5m", "1h30m")`);
    this.name = 'DurationError';
  }
}

/** Milliseconds in `text`; throws DurationError. A unit is required except for a bare "0". */
export function parseDuration(text: string): number {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new DurationError(text, 'empty');
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < rest.length) {
    const at = PART.lastIndex;
    const m = PART.exec(rest);
    if (!m || m[1] === undefined || m[2] === undefined) {
      const why = /^\d/.test(rest.slice(at))
        ? 'missing or unknown unit'
        : `unexpected ${JSON.stringify(rest.slice(at))}`;
      throw new DurationError(text, why);
    }
    total += Number(m[1]) * (UNIT_MS[m[2]] ?? 0);
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) throw new DurationError(text, 'too large');
  return sign * total;
}

/** The shortest Go-style spelling of `ms` (for messages and docs): 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return sign + out;
}

/**
 * `parseDuration` for settings held as whole milliseconds (timers, the wire's
 * `heartbeat_interval_ms`): "1500us" is refused rather than passed on as 1.5.
 */
export function parseWholeMs(text: string): number {
  const ms = parseDuration(text);
  if (!Number.isInteger(ms)) throw new DurationError(text, 'not a whole number of milliseconds');
  return ms;
}
