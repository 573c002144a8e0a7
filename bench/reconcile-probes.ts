/**
 * What bench/reconcile.ts reads from the running system: CPU time per process, Redis command
 * counts, the simulators' counters, the queues' state and the statuses written.
 */

import type { ChildProcess } from 'node:child_process';
import type { Cluster, Redis } from 'ioredis';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import type { Keys } from '../shared/keys.js';
import type { Queues } from '../store/queues/queues.js';
import { ask, sleep } from './reconcile-ipc.js';
import { processCpuSeconds } from './reconcile-machine.js';

async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

export interface CpuSnapshot {
  /** Every reconciler process, summed (worker threads and waited-for children included). */
  reconciler: number;
  /** Every gateway process, summed. */
  gateway: number;
  sims: number;
  /** Every redis-server (each node of a cluster), from INFO cpu. */
  redis: number;
}

const sumCpu = (procs: ChildProcess[]) => procs.reduce((s, c) => s + processCpuSeconds(c.pid), 0);

export async function cpuSnapshot(
  ctx: Pick<Ctx, 'reconcilers' | 'gateways' | 'sims' | 'redisNodes'>,
): Promise<CpuSnapshot> {
  const redis = await Promise.all(ctx.redisNodes.map(redisCpu));
  return {
    reconciler: sumCpu(ctx.reconcilers),
    gateway: sumCpu(ctx.gateways),
    sims: sumCpu(ctx.sims),
    redis: redis.reduce((s, x) => s + x, 0),
  };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  return {
    reconciler: b.reconciler - a.reconciler,
    gateway: b.gateway - a.gateway,
    sims: b.sims - a.sims,
    redis: b.redis - a.redis,
  };
}

/** Control-plane CPU (reconcilers + gateways + Redis) in ms per agent: the figure that compares across machines. */
export function controlMsPerAgent(cpu: CpuSnapshot, agents: number): number {
  return ((cpu.reconciler + cpu.gateway + cpu.redis) * 1000) / agents;
}

/** GC counters of the role children (role-stats.ts), summed per role. */
export interface GcSnapshot {
  minor: number;
  major: number;
  incremental: number;
  gcMs: number;
  /** Young generation size (new_space) of the first child, bytes. */
  newSpace: number;
  heapLimit: number;
}

export async function gcSnapshot(procs: ChildProcess[]): Promise<GcSnapshot> {
  const all = await Promise.all(procs.map((c) => ask(c, { type: 'gc-stats' }, 'gc-stats')));
  const sum = (k: string) => all.reduce((s, m) => s + Number(m[k] ?? 0), 0);
  return {
    minor: sum('minor'),
    major: sum('major'),
    incremental: sum('incremental'),
    gcMs: sum('gcMs'),
    newSpace: Number(all[0]?.newSpace ?? 0),
    heapLimit: Number(all[0]?.heapLimit ?? 0),
  };
}

export function gcDelta(a: GcSnapshot, b: GcSnapshot): GcSnapshot {
  return {
    minor: b.minor - a.minor,
    major: b.major - a.major,
    incremental: b.incremental - a.incremental,
    gcMs: b.gcMs - a.gcMs,
    newSpace: b.newSpace,
    heapLimit: b.heapLimit,
  };
}

export interface RestMemory {
  rss: number;
  heapUsed: number;
  external: number;
}

/** Memory at rest of each child (GC until RSS is stable), bytes. */
export async function restMemory(procs: ChildProcess[]): Promise<RestMemory[]> {
  const all = await Promise.all(procs.map((c) => ask(c, { type: 'rest-memory' }, 'rest-memory', 60_000)));
  return all.map((m) => ({ rss: Number(m.rss), heapUsed: Number(m.heapUsed), external: Number(m.external) }));
}

/** used_memory summed over the Redis nodes (masters and replicas alike), bytes. */
export async function redisUsedMemory(nodes: Redis[]): Promise<number> {
  const infos = await Promise.all(nodes.map((n) => n.info('memory')));
  return infos.reduce((s, i) => s + Number(/^used_memory:(\d+)/m.exec(i)?.[1] ?? 0), 0);
}

/** CONFIG RESETSTAT on every Redis node. */
export async function resetStats(ctx: Ctx): Promise<void> {
  await Promise.all(ctx.redisNodes.map((n) => n.config('RESETSTAT')));
}

/** INFO commandstats of every Redis node, summed. */
export async function allCommandStats(ctx: Ctx): Promise<Map<string, { calls: number; cpuS: number }>> {
  const infos = await Promise.all(ctx.redisNodes.map((n) => n.info('commandstats')));
  const total = new Map<string, { calls: number; cpuS: number }>();
  for (const info of infos)
    for (const [k, v] of commandStats(info)) {
      const t = total.get(k) ?? { calls: 0, cpuS: 0 };
      t.calls += v.calls;
      t.cpuS += v.cpuS;
      total.set(k, t);
    }
  return total;
}

/** INFO commandstats: calls and CPU seconds per command (Lua's inner calls counted apart). */
export function commandStats(info: string): Map<string, { calls: number; cpuS: number }> {
  const stats = new Map<string, { calls: number; cpuS: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    stats.set(m[1] ?? '', { calls: Number(m[2]), cpuS: Number(m[3]) / 1e6 });
  return stats;
}

export interface SimStats {
  runs: number;
  firstRunAt: number | null;
  lastRunAt: number | null;
  receipts: number;
  results: number;
  taskResults: number;
  drifted: number;
  acked: number;
  retried: number;
  overdue: number;
  /** Sockets closed (by the gateway: missed heartbeats, a newer session) and opened again. */
  closed: number;
  reconnected: number;
  missing: string[];
}

export interface Ctx {
  reconcilers: ChildProcess[];
  gateways: ChildProcess[];
  /** The client for keys: a plain client, or a cluster client with `--redis-cluster`. */
  redis: Redis | Cluster;
  /** One client per Redis node (one for a single Redis; every master and replica of a cluster): INFO. */
  redisNodes: Redis[];
  keys: Keys;
  queues: Queues;
  sims: ChildProcess[];
  agents: number;
  tasks: number;
  timeoutMs: number;
  /** Background Redis commands per second with nothing to reconcile (heartbeats, schedulers, idle workers). */
  idleRate: number;
  /** `--prof-phase`: the phase to profile and where the profiles go. */
  profile: { phase: string; dir: string } | null;
}

export async function simStats(sims: ChildProcess[]): Promise<SimStats> {
  const all = await Promise.all(sims.map((s) => ask(s, { type: 'stats' }, 'stats')));
  const sum = (k: keyof SimStats) => all.reduce((s, m) => s + Number(m[k] ?? 0), 0);
  const times = (k: 'firstRunAt' | 'lastRunAt') =>
    all.map((m) => m[k]).filter((v): v is number => typeof v === 'number');
  const first = times('firstRunAt');
  const last = times('lastRunAt');
  return {
    runs: sum('runs'),
    receipts: sum('receipts'),
    results: sum('results'),
    taskResults: sum('taskResults'),
    drifted: sum('drifted'),
    acked: sum('acked'),
    retried: sum('retried'),
    overdue: sum('overdue'),
    closed: sum('closed'),
    reconnected: sum('reconnected'),
    missing: all.flatMap((m) => (Array.isArray(m.missing) ? m.missing.map(String) : [])),
    firstRunAt: first.length ? Math.min(...first) : null,
    lastRunAt: last.length ? Math.max(...last) : null,
  };
}

export async function busy(queues: Queues, includeDelayed: boolean): Promise<number> {
  const states = [
    'waiting',
    'active',
    'prioritized',
    'waiting-children',
    ...(includeDelayed ? ['delayed' as const] : []),
  ] as const;
  const counts = await Promise.all([
    queues.reconcile.getJobCounts(...states),
    queues.results.getJobCounts(...states),
  ]);
  return counts.reduce((s, c) => s + Object.values(c).reduce((a, b) => a + b, 0), 0);
}

/** Nothing waiting or active, and no deadline job or retry still delayed. */
export async function waitQuiet(ctx: Ctx, what: string, deadline: number): Promise<void> {
  for (;;) {
    // Deadline jobs and retries belong to the cycle; the drift tick's own delayed jobs do not.
    const delayedOwn = (await ctx.queues.reconcile.getDelayed(0, -1)).filter(
      (j) => j.name === 'deadline' || j.name === 'deadlines' || j.attemptsMade > 0,
    ).length;
    if ((await busy(ctx.queues, false)) === 0 && delayedOwn === 0) return;
    if (Date.now() > deadline) {
      const delayed = await ctx.queues.reconcile.getDelayed(0, 5);
      console.log(
        `  still delayed: ${delayed.map((j) => `${j.name} ${JSON.stringify(j.data)} at +${j.timestamp + j.delay - Date.now()} ms, attempts ${j.attemptsMade}`).join('; ')}`,
      );
      throw new Error(`${what}: not quiet before the deadline`);
    }
    await sleep(500);
  }
}

/** The reconcile queue's auto-increment id: every job without a custom id (agent, deadline, fanout). */
export async function reconcileIdCounter(ctx: Ctx): Promise<number> {
  return Number((await ctx.redis.get(`${ctx.keys.bullPrefix(QUEUE_NAMES.reconcile)}:reconcile:id`)) ?? 0);
}

/** Batched results jobs carry no custom id, so BullMQ's id counter counts them. */
export async function resultsIdCounter(ctx: Ctx): Promise<number> {
  return Number((await ctx.redis.get(`${ctx.keys.bullPrefix(QUEUE_NAMES.results)}:results:id`)) ?? 0);
}

export async function verifyStatuses(ctx: Ctx, sinceIso: string): Promise<string> {
  const sample = 20;
  let ok = 0;
  for (let i = 0; i < sample; i++) {
    const n = Math.floor((i * ctx.agents) / sample);
    const agent = `sim-${String(n).padStart(6, '0')}`;
    const all = await ctx.redis.hgetall(ctx.keys.taskStatus(agent));
    const fresh = Object.values(all).filter((v) => (JSON.parse(v) as { at: string }).at >= sinceIso).length;
    if (fresh === ctx.tasks) ok++;
  }
  return `${ok}/${sample}`;
}

/**
 * When the jobs named `jobName` that finished after `t0` started and ended, ms after `t0`. Read from
 * the completed set and the job hashes' timestamps only (getJobs would move every job's data).
 */
export async function jobTimeline(
  ctx: Ctx,
  queue: 'reconcile' | 'results',
  jobName: string,
  t0: number,
): Promise<Record<string, number>> {
  const q = ctx.queues[queue];
  const ids = await ctx.redis.zrangebyscore(q.keys.completed ?? '', t0, '+inf');
  const pipe = ctx.redis.pipeline();
  for (const id of ids) pipe.hmget(q.toKey(id), 'name', 'processedOn', 'finishedOn');
  const rows = ((await pipe.exec()) ?? []).map(([, v]) => v as [string | null, string | null, string | null]);
  const jobs = rows.filter(([n, p]) => n === jobName && Number(p) >= t0);
  const starts = jobs.map(([, p]) => Number(p) - t0).sort((a, b) => a - b);
  const ends = jobs.map(([, , f]) => Number(f) - t0).sort((a, b) => a - b);
  const runs = jobs.map(([, p, f]) => Number(f) - Number(p)).sort((a, b) => a - b);
  const at = (xs: number[], f: number) => xs[Math.min(xs.length - 1, Math.floor(f * xs.length))] ?? 0;
  return {
    jobs: jobs.length,
    firstStart: starts[0] ?? 0,
    lastStart: starts.at(-1) ?? 0,
    lastEnd: ends.at(-1) ?? 0,
    runMedian: at(runs, 0.5),
    runMax: runs.at(-1) ?? 0,
  };
}

/** BENCH_SLOWLOG: Redis time by command over the phase (every command was logged), then the defaults back. */
export async function printSlowlog(redis: Redis, name: string): Promise<void> {
  const log = (await redis.slowlog('GET', 1000000)) as Array<[number, number, number, string[]]>;
  const by = new Map<string, [number, number]>();
  for (const [, , usec, argv] of log) {
    const k =
      argv[0]?.toLowerCase() === 'evalsha'
        ? `evalsha ${argv[1]} ${argv[3] ?? ''}`
        : `${argv[0]} ${argv[1] ?? ''}`;
    const key = k.replace(/-[0-9a-z]{6,}\}|sim-\d+/g, '#').slice(0, 110);
    const e = by.get(key) ?? [0, 0];
    e[0] += usec;
    e[1] += 1;
    by.set(key, e);
  }
  console.log(`  [${name}] slowlog ${log.length} entries; Redis time by command:`);
  for (const [k, [us, n]] of [...by].sort((a, b) => b[1][0] - a[1][0]).slice(0, 15))
    console.log(`    ${(us / 1e6).toFixed(3)} s  ${n}×  ${k}`);
  await redis.config('SET', 'slowlog-log-slower-than', '10000', 'slowlog-max-len', '128');
  await redis.slowlog('RESET');
}

/**
 * What one agent's own keys hold in Redis (MEMORY USAGE, by key shape with the name replaced by
 * `#`), found by SCAN on every node (deduplicated: a replica holds its master's keys).
 */
export async function agentKeyBytes(ctx: Ctx, agent: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (const node of ctx.redisNodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `*${agent}*`, 'COUNT', 10_000);
      cursor = next;
      for (const key of keys) {
        if (seen.has(key)) continue;
        seen.set(key, Number((await node.memory('USAGE', key)) ?? 0));
      }
    } while (cursor !== '0');
  }
  const byShape = new Map<string, number>();
  for (const [key, bytes] of seen) {
    const shape = key.replaceAll(agent, '#').replace(/^[^:]*:/, '');
    byShape.set(shape, (byShape.get(shape) ?? 0) + bytes);
  }
  return byShape;
}
