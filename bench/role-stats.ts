/**
 * In a role child of bench/reconcile.ts (gateway or reconciler): garbage-collection counters and
 * memory, asked for over the fork IPC channel.
 *   gc-stats → gc-stats {minor, major, incremental, weak, gcMs, heapUsed, heapTotal, rss, heapLimit, semiSpace}
 *   rest-memory → rest-memory {rss, heapUsed, heapTotal, external} at rest (GC until RSS is stable;
 *   needs --expose-gc to force collections, else it only waits).
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

type Msg = Record<string, unknown> & { type: string };

const gc = (globalThis as { gc?: () => void }).gc;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function serveRoleStats(send: (m: Msg) => void): void {
  const counts = { minor: 0, major: 0, incremental: 0, weak: 0, gcMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      counts.gcMs += e.duration;
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) counts.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) counts.major++;
      else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) counts.incremental++;
      else counts.weak++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  process.on('message', (m: Msg) => {
    if (m.type === 'gc-stats') {
      const mem = process.memoryUsage();
      const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      send({
        type: 'gc-stats',
        ...counts,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        heapLimit: getHeapStatistics().heap_size_limit,
        // The young generation as V8 sized it (two semi-spaces): what decides how often it scavenges.
        newSpace: newSpace?.space_size ?? 0,
      });
    } else if (m.type === 'rest-memory') void restMemory().then((r) => send({ type: 'rest-memory', ...r }));
  });
}

/**
 * RSS at rest: V8 gives emptied pages back only after GCs and some idle seconds, so GC once a
 * second until RSS has moved less than 1 % for 3 s in a row (at most 30 s).
 */
async function restMemory(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number }> {
  let stable = 0;
  let last = -1;
  for (let i = 0; i < 30 && stable < 3; i++) {
    gc?.();
    await sleep(1000);
    const rss = process.memoryUsage().rss;
    stable = Math.abs(rss - last) < rss / 100 ? stable + 1 : 0;
    last = rss;
  }
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external };
}
