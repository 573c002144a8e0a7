/**
 * Reconcile-cycle benchmark: a real gateway and a real reconciler (each its own child process, wired
 * by startServices exactly as `fluke gateway` / `fluke reconciler`), a private redis-server, a real
 * Git repo of N tasks, and simulated agents (WebSocket clients spread over several child processes)
 * that answer every `run` at once. Measures:
 *   1. a full drift-check cycle over every agent (fan-out job → last result processed), all
 *      satisfied, then with a fraction of (agent, task) pairs drifted-then-applied;
 *   2. a new commit: poll → first and last instruction delivered;
 *   3. Redis commands (INFO commandstats delta, idle background subtracted) and BullMQ jobs per
 *      agent per cycle;
 *   4. the raw BullMQ job rate on the same Redis (no-op jobs, same concurrency) as the baseline.
 *
 *   node --import tsx bench/reconcile.ts [--agents 10000] [--tasks 20] [--sims 3] [--drift 0.1]
 *     [--heartbeat 10s] [--baseline-jobs 50000] [--phase-timeout-s 300] [--cpu-prof] [--prof-phase satisfied] [--write]
 *   The simulated agents send what the real agent sends for instant steps (bench/reconcile-children.ts).
 *   --write: replace the `## Reconcile cycle` section of bench/RESULTS.md.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { RESEND_AFTER_MS } from '../agent/agent.js';
import { Keys } from '../shared/keys.js';
import { closeQueues, createQueues, type Queues } from '../store/queues/queues.js';
import { pollNow } from '../store/queues/schedules.js';
import { makeGitRepo } from '../testkit/git-repo.js';
import { freePort, startRedis } from '../testkit/redis.js';
import { AGENT_TOKEN, serverHcl } from '../testkit/system.js';
import { runBaseline, runRole, runSims } from './reconcile-children.js';
import { writeResultsSection } from './results-file.js';

const SELF = fileURLToPath(import.meta.url);
const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    tasks: { type: 'string', default: '20' },
    sims: { type: 'string', default: '3' },
    drift: { type: 'string', default: '0.1' },
    heartbeat: { type: 'string', default: '10s' },
    'baseline-jobs': { type: 'string', default: '50000' },
    'phase-timeout-s': { type: 'string', default: '300' },
    'cpu-prof': { type: 'boolean', default: false },
    'prof-phase': { type: 'string' },
    'role-flags': { type: 'string', default: '' },
    write: { type: 'boolean', default: false },
    // children
    child: { type: 'string' },
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    url: { type: 'string' },
    count: { type: 'string' },
    offset: { type: 'string' },
    proc: { type: 'string' },
    redis: { type: 'string' },
    prefix: { type: 'string' },
    jobs: { type: 'string' },
    concurrency: { type: 'string' },
  },
});

type Msg = Record<string, unknown> & { type: string };

const children = new Set<ChildProcess>();

function spawnChild(childArgs: string[], execArgv: string[] = []): ChildProcess {
  const child = fork(SELF, childArgs, {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function waitFor(child: ChildProcess, type: string, timeoutMs: number): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${type}`));
    }, timeoutMs);
    const onMsg = (m: Msg) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited (${code}) while waiting for ${type}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

async function ask(child: ChildProcess, message: Msg, reply: string, timeoutMs = 30_000): Promise<Msg> {
  const p = waitFor(child, reply, timeoutMs);
  child.send(message);
  return p;
}

/** SIGTERM (a graceful close lets a CPU profile be written), SIGKILL after 10 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

interface CpuSnapshot {
  reconciler: number;
  gateway: number;
  sims: number;
  redis: number;
}

async function cpuSnapshot(ctx: Ctx): Promise<CpuSnapshot> {
  return {
    reconciler: cpuSeconds(ctx.reconciler.pid),
    gateway: cpuSeconds(ctx.gateway.pid),
    sims: ctx.sims.reduce((s, c) => s + cpuSeconds(c.pid), 0),
    redis: await redisCpu(ctx.redis),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** INFO commandstats: calls and CPU seconds per command (Lua's inner calls counted apart). */
function commandStats(info: string): Map<string, { calls: number; cpuS: number }> {
  const stats = new Map<string, { calls: number; cpuS: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    stats.set(m[1] ?? '', { calls: Number(m[2]), cpuS: Number(m[3]) / 1e6 });
  return stats;
}

function manifest(tasks: number, variant: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < tasks; i++) {
    const name = `bench_${String(i).padStart(2, '0')}`;
    files[`tasks/${name}.fluke.hcl`] = `task "${name}" {
  selector { match_labels = { role = "bench" } }
  shell "step" {
    check   = "true"
    command = "true # ${i === 0 ? variant : 'v1'}"
  }
}
`;
  }
  return files;
}

interface SimStats {
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
  closed: number;
  missing: string[];
}

interface PhaseResult {
  name: string;
  trigger: string;
  /** Trigger → last result job finished (finishedOn of the newest completed results job). */
  cycleMs: number;
  firstRunMs: number;
  lastRunMs: number;
  runs: number;
  taskResults: number;
  drifted: number;
  /** Trigger → everything quiet, deadline jobs included (the window the Redis counts cover). */
  windowMs: number;
  commands: number;
  backgroundCommands: number;
  topCommands: [string, number][];
  /** Redis CPU seconds per command in the window, top first. */
  commandCpuS?: [string, number][];
  reconcileJobs: number;
  resultJobs: number;
  /** When the phase's dispatch (`agents`) and results jobs ran, ms after the trigger. */
  timeline?: Record<'agents' | 'results', Record<string, number>>;
  /** Results the gateway never acknowledged, even after re-sends. */
  unacked: number;
  /** Results the gateway refused for a full backlog (result_retry), each re-sent after the delay. */
  retried: number;
  /** Results re-sent after 30 s without an ack (an enqueue that timed out). */
  overdue: number;
  /** CPU seconds used from the trigger to the last result, per process. */
  cpu: CpuSnapshot;
  /** Sampled agents whose every task has a status written in this phase. */
  verified: string;
  /** Latency from the poll having stored the commit (revision_at) to first / last run. */
  fromRevisionAt?: {
    first: number;
    last: number;
    pollMs: number;
    fromPollNow: { first: number; last: number };
  };
  /** Epoch ms just before the trigger. */
  startedAt: number;
}

interface Ctx {
  reconciler: ChildProcess;
  gateway: ChildProcess;
  redis: Redis;
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

async function simStats(sims: ChildProcess[]): Promise<SimStats> {
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
    missing: all.flatMap((m) => (Array.isArray(m.missing) ? m.missing.map(String) : [])),
    firstRunAt: first.length ? Math.min(...first) : null,
    lastRunAt: last.length ? Math.max(...last) : null,
  };
}

async function busy(queues: Queues, includeDelayed: boolean): Promise<number> {
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
async function waitQuiet(ctx: Ctx, what: string, deadline: number): Promise<void> {
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
async function reconcileIdCounter(ctx: Ctx): Promise<number> {
  return Number((await ctx.redis.get(`${ctx.keys.bullPrefix}:reconcile:id`)) ?? 0);
}

/** Batched results jobs carry no custom id, so BullMQ's id counter counts them. */
async function resultsIdCounter(ctx: Ctx): Promise<number> {
  return Number((await ctx.redis.get(`${ctx.keys.bullPrefix}:results:id`)) ?? 0);
}

async function verifyStatuses(ctx: Ctx, sinceIso: string): Promise<string> {
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

async function runPhase(
  ctx: Ctx,
  name: string,
  drift: number,
  trigger: () => Promise<void>,
  triggerName: string,
): Promise<PhaseResult> {
  await Promise.all(ctx.sims.map((s) => ask(s, { type: 'phase', name, drift, salt: name }, 'phased')));
  const idBefore = await reconcileIdCounter(ctx);
  const resultsIdBefore = await resultsIdCounter(ctx);
  await ctx.redis.config('RESETSTAT');
  // BENCH_SLOWLOG: every command of the phase into the slow log (read and restored at its end).
  if (process.env.BENCH_SLOWLOG) {
    await ctx.redis.config('SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '200000');
    await ctx.redis.slowlog('RESET');
  }
  const profiled = ctx.profile?.phase === name ? ctx.profile : null;
  if (profiled)
    await Promise.all(
      [ctx.reconciler, ctx.gateway].map((c) => ask(c, { type: 'profile-start' }, 'profiling')),
    );
  const cpuBefore = await cpuSnapshot(ctx);
  const t0 = Date.now();
  const sinceIso = new Date(t0).toISOString();
  await trigger();
  const deadline = t0 + ctx.timeoutMs;
  let stats: SimStats;
  let lastLog = 0;
  let lastAcked = -1;
  let lastAckAt = Date.now();
  for (;;) {
    stats = await simStats(ctx.sims);
    if (stats.acked !== lastAcked) {
      lastAcked = stats.acked;
      lastAckAt = Date.now();
    }
    // A result the gateway failed to enqueue in time is not acked; the simulated agent re-sends it
    // after 30 s, as the real one does. Stop waiting for acks once they have stalled for longer
    // than that, and report the gap.
    const acksSettled = stats.acked >= stats.results || Date.now() - lastAckAt > RESEND_AFTER_MS + 10_000;
    if (stats.runs >= ctx.agents && acksSettled && (await busy(ctx.queues, false)) === 0) break;
    if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      console.log(
        `  [${name}] ${((Date.now() - t0) / 1000).toFixed(1)} s: runs ${stats.runs}/${ctx.agents}, results sent ${stats.results}, acked ${stats.acked}${stats.retried ? `, refused ${stats.retried}` : ''}`,
      );
    }
    if (Date.now() > deadline)
      throw new Error(
        `${name}: cycle did not finish within ${ctx.timeoutMs} ms (runs ${stats.runs}, results ${stats.results}, acked ${stats.acked})`,
      );
    await sleep(200);
  }
  const newest = (await ctx.queues.results.getJobs(['completed'], 0, 0, false))[0];
  const lastResultAt = newest?.finishedOn ?? Date.now();
  const cpuAfter = await cpuSnapshot(ctx);
  if (profiled) {
    mkdirSync(profiled.dir, { recursive: true });
    const files = await Promise.all(
      (['reconciler', 'gateway'] as const).map((role) =>
        ask(
          ctx[role],
          { type: 'profile-stop', file: join(profiled.dir, `${name}-${role}.cpuprofile`) },
          'profiled',
        ),
      ),
    );
    console.log(`  [${name}] CPU profiles: ${files.map((f) => f.file).join(', ')}`);
  }
  // When each `agents` (dispatch) job and each results job ran, relative to the trigger: shows
  // whether the cycle waits on dispatch, on results, or on neither (latency). Read from the
  // completed sets and the job hashes' timestamps only (getJobs would move every job's data).
  const span = async (queue: 'reconcile' | 'results', jobName: string) => {
    const q = ctx.queues[queue];
    const ids = await ctx.redis.zrangebyscore(q.keys.completed ?? '', t0, '+inf');
    const pipe = ctx.redis.pipeline();
    for (const id of ids) pipe.hmget(q.toKey(id), 'name', 'processedOn', 'finishedOn');
    const rows = ((await pipe.exec()) ?? []).map(
      ([, v]) => v as [string | null, string | null, string | null],
    );
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
  };
  const timeline = { agents: await span('reconcile', 'agents'), results: await span('results', 'results') };
  const cpu: CpuSnapshot = {
    reconciler: cpuAfter.reconciler - cpuBefore.reconciler,
    gateway: cpuAfter.gateway - cpuBefore.gateway,
    sims: cpuAfter.sims - cpuBefore.sims,
    redis: cpuAfter.redis - cpuBefore.redis,
  };
  const verified = await verifyStatuses(ctx, sinceIso);
  // The deadline jobs (one per instruction, delayed 3 heartbeats) belong to the cycle's cost too.
  await waitQuiet(ctx, name, deadline);
  const windowMs = Date.now() - t0;
  const cmdInfo = await ctx.redis.info('commandstats');
  if (process.env.BENCH_SLOWLOG) {
    const log = (await ctx.redis.slowlog('GET', 1000000)) as Array<[number, number, number, string[]]>;
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
    await ctx.redis.config('SET', 'slowlog-log-slower-than', '10000', 'slowlog-max-len', '128');
    await ctx.redis.slowlog('RESET');
  }
  const cmd = commandStats(cmdInfo);
  const idAfter = await reconcileIdCounter(ctx);
  const resultsIdAfter = await resultsIdCounter(ctx);
  const counted = [...cmd.entries()].filter(([k]) => k !== 'info' && k !== 'config' && k !== 'slowlog');
  const commands = counted.reduce((s, [, v]) => s + v.calls, 0);
  const top = counted
    .map(([k, v]): [string, number] => [k, v.calls])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12);
  const cpuTop = counted
    .map(([k, v]): [string, number] => [k, v.cpuS])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8);
  return {
    name,
    startedAt: t0,
    trigger: triggerName,
    cycleMs: lastResultAt - t0,
    firstRunMs: (stats.firstRunAt ?? t0) - t0,
    lastRunMs: (stats.lastRunAt ?? t0) - t0,
    runs: stats.runs,
    taskResults: stats.taskResults,
    drifted: stats.drifted,
    windowMs,
    commands,
    backgroundCommands: (ctx.idleRate * windowMs) / 1000,
    topCommands: top,
    commandCpuS: cpuTop,
    reconcileJobs: idAfter - idBefore,
    timeline,
    resultJobs: resultsIdAfter - resultsIdBefore,
    unacked: stats.results - stats.acked,
    retried: stats.retried,
    overdue: stats.overdue,
    verified,
    cpu,
  };
}

async function main(): Promise<void> {
  const agents = Number(args.agents);
  const tasks = Number(args.tasks);
  const simProcs = Math.max(1, Number(args.sims));
  const drift = Number(args.drift);
  const timeoutMs = Number(args['phase-timeout-s']) * 1000;
  const baselineJobs = Number(args['baseline-jobs']);
  const started = Date.now();
  const load = loadavg();
  console.log(
    `${agents} agents × ${tasks} tasks, ${simProcs} simulator processes; load average ${load.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const redisServer = await startRedis();
  const repo = await makeGitRepo();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-bench-'));
  const profDir = join(
    dirname(SELF),
    'out',
    `reconcile-prof-${new Date().toISOString().replace(/[:.]/g, '-')}`,
  );
  let queues: Queues | null = null;
  let client: Redis | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = () => {
    cleaning ??= cleanupOnce();
    return cleaning;
  };
  const cleanupOnce = async () => {
    await Promise.allSettled([...children].map(stop));
    if (queues) await closeQueues(queues).catch(() => {});
    client?.disconnect();
    await redisServer.stop().catch((err: unknown) => console.error('redis stop failed', err));
    await repo.remove().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    await repo.commit(manifest(tasks, 'v1'));
    const agentsPort = await freePort();
    const httpPort = await freePort();
    const configFile = join(dir, 'server.hcl');
    writeFileSync(
      configFile,
      serverHcl({
        agentsPort,
        httpPort,
        redisUrl: redisServer.url,
        prefix: redisServer.prefix,
        repo: repo.dir,
        // Long: the periodic drift tick (every 60 s, agents whose slot falls in that window) would
        // otherwise mix its own drift checks into the cycles; at 720h that is ~0.2 of 10,000 per tick.
        pollInterval: '720h',
        heartbeat: args.heartbeat ?? '10s',
        policy: 'remediate',
        alertWebhook: null,
        eventStore: 'redis',
      }),
    );
    const keys = new Keys(redisServer.prefix);
    client = redisServer.client();
    queues = createQueues(client, keys);
    const prof = (role: string) => [
      ...(args['role-flags'] ? args['role-flags'].split(/\s+/) : []),
      ...(args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', join(profDir, role)] : []),
    ];

    const reconciler = spawnChild(
      ['--child', 'reconciler', '--config', configFile, '--data-dir', join(dir, 'reconciler')],
      prof('reconciler'),
    );
    await waitFor(reconciler, 'ready', 60_000);
    const gateway = spawnChild(
      ['--child', 'gateway', '--config', configFile, '--data-dir', join(dir, 'gateway')],
      prof('gateway'),
    );
    const ready = await waitFor(gateway, 'ready', 60_000);
    const implementation = String(ready.implementation);
    const url = `ws://127.0.0.1:${ready.port}/agent`;
    const c = client;
    for (
      const until = Date.now() + 60_000;
      !(await c.hget(keys.sourceStatus(), 'status'))?.includes('"revision":"');
    ) {
      if (Date.now() > until) throw new Error('the reconciler never compiled the first commit');
      await sleep(200);
    }

    const per = Math.ceil(agents / simProcs);
    const sims: ChildProcess[] = [];
    for (let i = 0; i < simProcs; i++) {
      const count = Math.max(0, Math.min(per, agents - i * per));
      const sim = spawnChild(
        [
          '--child',
          'sims',
          '--url',
          url,
          '--count',
          String(count),
          '--offset',
          String(i * per),
          '--proc',
          String(i),
        ],
        // They stand for remote hosts: a young generation big enough that the results they keep
        // until acked (a second or two) do not get promoted and collected again as old objects.
        ['--max-semi-space-size=64'],
      );
      sims.push(sim);
    }
    await Promise.all(sims.map((s) => waitFor(s, 'loaded', 60_000)));
    const connectStart = Date.now();
    const connected = await Promise.all(sims.map((s) => ask(s, { type: 'connect' }, 'connected', timeoutMs)));
    const connectMs = Date.now() - connectStart;
    const nConnected = connected.reduce((s, m) => s + Number(m.agents), 0);
    console.log(`connected + registered ${nConnected} agents in ${(connectMs / 1000).toFixed(1)} s`);

    const ctx: Ctx = {
      reconciler,
      gateway,
      redis: c,
      keys,
      queues,
      sims,
      agents,
      tasks,
      timeoutMs,
      idleRate: 0,
      profile: args['prof-phase'] ? { phase: args['prof-phase'], dir: profDir } : null,
    };
    // Every registration enqueued a `connect` reconcile: let that first cycle finish, deadlines included.
    const warmStart = Date.now();
    for (const until = Date.now() + timeoutMs; ; ) {
      const s = await simStats(sims);
      if (s.runs >= agents && (await busy(queues, false)) === 0) {
        if (s.acked < s.results)
          console.log(`warm-up: ${s.results - s.acked} results never acknowledged by the gateway`);
        break;
      }
      if (Date.now() > until) throw new Error(`connect reconciles did not finish (runs ${s.runs})`);
      await sleep(500);
    }
    const warmMs = Date.now() - warmStart;
    await waitQuiet(ctx, 'warm-up', Date.now() + timeoutMs);
    console.log(
      `connect-triggered reconciles done ${(warmMs / 1000).toFixed(1)} s after the last registration`,
    );

    // Background: heartbeats, scheduler upserts, idle workers.
    await c.config('RESETSTAT');
    const idleStart = Date.now();
    await sleep(10_000);
    const idle = commandStats(await c.info('commandstats'));
    const idleCommands = [...idle.entries()]
      .filter(([k]) => k !== 'info' && k !== 'config')
      .reduce((s, [, v]) => s + v.calls, 0);
    ctx.idleRate = (idleCommands * 1000) / (Date.now() - idleStart);
    console.log(`idle background: ${ctx.idleRate.toFixed(0)} Redis commands/s`);

    const fanout = (trigger: 'drift_check' | 'commit') => async () => {
      await queues?.reconcile.add('fanout', { trigger, run_id: null, task: null, agent: null });
    };
    const phases: PhaseResult[] = [];
    for (const [name, d] of [
      ['satisfied', 0],
      ['drifted', drift],
    ] as const) {
      const r = await runPhase(ctx, name, d, fanout('drift_check'), 'fanout drift_check');
      phases.push(r);
      console.log(JSON.stringify(r));
    }

    // A commit: only the first task changes; every agent gets the new revision.
    const commitAt: { t0: number } = { t0: 0 };
    const commitPhase = await runPhase(
      ctx,
      'commit',
      0,
      async () => {
        await repo.commit(manifest(tasks, `v2-${Date.now()}`));
        commitAt.t0 = Date.now();
        await pollNow(queues as Queues);
      },
      'git commit + pollNow',
    );
    const status = JSON.parse((await c.hget(keys.sourceStatus(), 'status')) ?? '{}') as {
      revision_at?: string;
    };
    const revisionAt = status.revision_at ? Date.parse(status.revision_at) : commitAt.t0;
    const firstAt = commitPhase.startedAt + commitPhase.firstRunMs;
    const lastAt = commitPhase.startedAt + commitPhase.lastRunMs;
    commitPhase.fromRevisionAt = {
      pollMs: revisionAt - commitAt.t0,
      fromPollNow: { first: firstAt - commitAt.t0, last: lastAt - commitAt.t0 },
      first: firstAt - revisionAt,
      last: lastAt - revisionAt,
    };
    phases.push(commitPhase);
    console.log(JSON.stringify(commitPhase));

    const baselineChild = spawnChild([
      '--child',
      'baseline',
      '--redis',
      redisServer.url,
      '--prefix',
      redisServer.prefix,
      '--jobs',
      String(baselineJobs),
      '--concurrency',
      '50',
    ]);
    const baseline = await waitFor(baselineChild, 'baseline', timeoutMs);
    await stop(baselineChild);
    const baselineRate = Number(baseline.jobs) / (Number(baseline.totalMs) / 1000);
    console.log(
      `baseline: ${baseline.jobs} no-op jobs in ${baseline.totalMs} ms (adds took ${baseline.addMs} ms) → ${baselineRate.toFixed(0)} jobs/s`,
    );

    const report = renderReport({
      agents,
      tasks,
      simProcs,
      drift,
      heartbeat: args.heartbeat ?? '10s',
      baselineJobs,
      implementation,
      connectMs,
      warmMs,
      idleRate: ctx.idleRate,
      phases,
      baseline: {
        jobs: Number(baseline.jobs),
        totalMs: Number(baseline.totalMs),
        addMs: Number(baseline.addMs),
        rate: baselineRate,
      },
      load,
      totalS: (Date.now() - started) / 1000,
    });
    console.log(report);
    if (args.write) writeResultsSection('Reconcile cycle', report);
    if (args['cpu-prof']) console.log(`CPU profiles (written on exit): ${profDir}`);
  } finally {
    await cleanup();
  }
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}

function renderReport(r: {
  agents: number;
  tasks: number;
  simProcs: number;
  drift: number;
  heartbeat: string;
  baselineJobs: number;
  implementation: string;
  connectMs: number;
  warmMs: number;
  idleRate: number;
  phases: PhaseResult[];
  baseline: { jobs: number; totalMs: number; addMs: number; rate: number };
  load: number[];
  totalS: number;
}): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const cpu = cpus()[0]?.model ?? 'unknown';
  const cmd = `node --import tsx bench/reconcile.ts --agents ${r.agents} --tasks ${r.tasks} --sims ${r.simProcs} --drift ${r.drift} --heartbeat ${r.heartbeat} --baseline-jobs ${r.baselineJobs}`;
  const rows = r.phases.map((p) => {
    const jobs = p.reconcileJobs + p.resultJobs;
    const net = p.commands - p.backgroundCommands;
    const floorMs = (jobs / r.baseline.rate) * 1000;
    return {
      p,
      jobs,
      line: `| ${p.name} (${p.trigger}) | **${s(p.cycleMs)}** | ${s(p.firstRunMs)} | ${s(p.lastRunMs)} | ${p.runs} | ${p.drifted} | ${(jobs / r.agents).toFixed(3)} (${(p.reconcileJobs / r.agents).toFixed(3)} reconcile + ${(p.resultJobs / r.agents).toFixed(3)} results) | ${(net / r.agents).toFixed(0)} (raw ${(p.commands / r.agents).toFixed(0)}) | ${Math.round(jobs / (p.cycleMs / 1000))} | ${(p.cycleMs / floorMs).toFixed(2)}× | ${p.verified}${p.unacked > 0 ? `; ${p.unacked} results unacked` : ''}${p.retried > 0 ? `; ${p.retried} refused and re-sent` : ''}${p.overdue > 0 ? `; ${p.overdue} re-sent after 30 s` : ''} |`,
    };
  });
  const commit = r.phases.find((p) => p.name === 'commit');
  const sat = r.phases.find((p) => p.name === 'satisfied');
  const lines = [
    '## Reconcile cycle',
    '',
    `Command: \`${cmd}\``,
    '',
    `Machine: ${cpus().length} × ${cpu} (shared with other work; load average at start ${r.load.map((l) => l.toFixed(1)).join(' / ')}), Node ${process.version}, ` +
      `redis-server private, uWebSockets.js implementation: **${r.implementation}**. Date: ${new Date().toISOString().slice(0, 10)}. Whole run: ${r.totalS.toFixed(0)} s.`,
    '',
    `Set-up: one \`fluke gateway\` and one \`fluke reconciler\`, each a separate child process started through \`startServices\` ` +
      `(default worker concurrency: reconcile 50, results 8), Redis event store, drift policy \`remediate\`, heartbeat ${r.heartbeat}; ` +
      `${r.agents} simulated agents over ${r.simProcs} processes (\`ws\` clients), labels matching all ${r.tasks} tasks (one shell step each); ` +
      'each `run` answered at once with what the real agent sends for instant steps: a receipt, a task_result per task, and a check_result before each apply (drifted pairs); ' +
      'unacknowledged results re-sent as the agent does (after a `result_retry` delay, or 30 s). ' +
      `Cycles are triggered by one \`fanout\` job (trigger \`drift_check\`) on the reconcile queue; the commit case commits to the repo and calls \`pollNow\`. ` +
      `Cycle time = trigger → \`finishedOn\` of the last results job; Redis commands = INFO commandstats delta from trigger until every queue is quiet ` +
      `(the per-instruction deadline jobs, 3 heartbeats later, included), minus the idle background (${r.idleRate.toFixed(0)} commands/s: heartbeats, schedulers, idle workers). ` +
      `Lua scripts' inner calls are counted by Redis 7 as commands too.`,
    '',
    `Registration of ${r.agents} agents took ${s(r.connectMs)}; the connect-triggered reconciles finished ${s(r.warmMs)} after that.`,
    '',
    '| cycle | trigger → last result processed | → first `run` at an agent | → last `run` | runs | drifted pairs | BullMQ jobs / agent | Redis commands / agent (net of idle) | jobs/s | × baseline time for the same jobs | statuses verified (sample) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((x) => x.line),
    '',
    `- **BullMQ baseline** (same Redis, same run): ${r.baseline.jobs} no-op jobs added with addBulk × 1000, one Worker at concurrency 50 in its own process: ` +
      `**${r.baseline.rate.toFixed(0)} jobs/s** (${s(r.baseline.totalMs)} in all, adds ${s(r.baseline.addMs)}). ` +
      `A cycle of ${sat ? ((sat.reconcileJobs + sat.resultJobs) / r.agents).toFixed(1) : '?'} jobs per agent over ${r.agents} agents therefore cannot beat ` +
      `${sat ? s(((sat.reconcileJobs + sat.resultJobs) / r.baseline.rate) * 1000) : '?'} on this Redis with this job layout; the last column is the cycle time divided by that floor.`,
    commit?.fromRevisionAt
      ? `- **Commit → instructions**: the poll (fetch + compile + store) took ${s(commit.fromRevisionAt.pollMs)} after \`pollNow\`; from the stored commit to the first \`run\` at an agent ` +
        `**${s(commit.fromRevisionAt.first)}**, to the last **${s(commit.fromRevisionAt.last)}** (from \`pollNow\`: ${s(commit.fromRevisionAt.fromPollNow.first)} / ${s(commit.fromRevisionAt.fromPollNow.last)}).`
      : '',
    `- CPU seconds used from trigger to last result (${cpus().length} cores = ${cpus().length} CPU-s per wall second at most): ${r.phases
      .map(
        (p) =>
          `${p.name}: reconciler ${p.cpu.reconciler.toFixed(1)}, redis-server ${p.cpu.redis.toFixed(1)}, gateway ${p.cpu.gateway.toFixed(1)}, simulators ${p.cpu.sims.toFixed(1)} (wall ${(p.cycleMs / 1000).toFixed(1)})`,
      )
      .join('; ')}.`,
    `- Top Redis commands per agent in the satisfied cycle: ${sat ? sat.topCommands.map(([k, v]) => `${k} ${(v / r.agents).toFixed(1)}`).join(', ') : ''}.`,
    '',
  ];
  return lines.join('\n');
}

if (args.child === 'gateway' || args.child === 'reconciler') {
  await runRole(args.child, args.config ?? '', args['data-dir'] ?? tmpdir());
} else if (args.child === 'sims') {
  await runSims({
    url: args.url ?? '',
    token: AGENT_TOKEN,
    count: Number(args.count),
    offset: Number(args.offset ?? 0),
    proc: Number(args.proc ?? 0),
  });
} else if (args.child === 'baseline') {
  await runBaseline({
    redis: args.redis ?? '',
    prefix: args.prefix ?? '',
    jobs: Number(args.jobs),
    concurrency: Number(args.concurrency ?? 50),
  });
} else {
  await main();
}
