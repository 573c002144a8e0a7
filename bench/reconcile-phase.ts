/**
 * One measured cycle of bench/reconcile.ts: trigger it, wait until every agent ran and every result
 * was acknowledged and processed, then read what it cost (time, CPU, Redis commands, BullMQ jobs).
 */
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RESEND_AFTER_MS } from '../agent/agent.js';
import { ask, sleep } from './reconcile-ipc.js';
import { cpuMhz, cpuShares, cpuTicks } from './reconcile-machine.js';
import {
  allCommandStats,
  busy,
  type CpuSnapshot,
  type Ctx,
  cpuDelta,
  cpuSnapshot,
  type GcSnapshot,
  gcDelta,
  gcSnapshot,
  jobTimeline,
  printSlowlog,
  reconcileIdCounter,
  resetStats,
  resultsIdCounter,
  type SimStats,
  simStats,
  verifyStatuses,
  waitQuiet,
} from './reconcile-probes.js';

export interface PhaseResult {
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
  /** Agent sockets closed so far in the run (each reconnects, as the agent does), cumulative. */
  closed: number;
  /** CPU seconds used from the trigger to the last result, per role (every process of it). */
  cpu: CpuSnapshot;
  /** The reconcilers' garbage collections over the same window. */
  reconcilerGc: GcSnapshot;
  /** The machine over the same window: load average at the start, mean clock, steal and idle %. */
  machine: { load1: number; mhz: number; stealPct: number; idlePct: number };
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

export async function runPhase(
  ctx: Ctx,
  name: string,
  drift: number,
  trigger: () => Promise<void>,
  triggerName: string,
): Promise<PhaseResult> {
  await Promise.all(ctx.sims.map((s) => ask(s, { type: 'phase', name, drift, salt: name }, 'phased')));
  const idBefore = await reconcileIdCounter(ctx);
  const resultsIdBefore = await resultsIdCounter(ctx);
  await resetStats(ctx);
  // BENCH_SLOWLOG: every command of the phase into the slow log (read and restored at its end).
  if (process.env.BENCH_SLOWLOG && ctx.redis instanceof Redis) {
    await ctx.redis.config('SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '200000');
    await ctx.redis.slowlog('RESET');
  }
  const profiled = ctx.profile?.phase === name ? ctx.profile : null;
  if (profiled)
    await Promise.all(
      [...ctx.reconcilers, ...ctx.gateways].map((c) => ask(c, { type: 'profile-start' }, 'profiling')),
    );
  const gcBefore = await gcSnapshot(ctx.reconcilers);
  const ticksBefore = cpuTicks();
  const load1 = loadavg()[0] ?? 0;
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
  const machine = { load1, mhz: cpuMhz(), ...cpuShares(ticksBefore, cpuTicks()) };
  const gcAfter = await gcSnapshot(ctx.reconcilers);
  if (profiled) {
    mkdirSync(profiled.dir, { recursive: true });
    const roles = [
      ...ctx.reconcilers.map((c, i) => ({ c, role: `reconciler-${i}` })),
      ...ctx.gateways.map((c, i) => ({ c, role: `gateway-${i}` })),
    ];
    const files = await Promise.all(
      roles.map(({ c, role }) =>
        ask(c, { type: 'profile-stop', file: join(profiled.dir, `${name}-${role}.cpuprofile`) }, 'profiled'),
      ),
    );
    console.log(`  [${name}] CPU profiles: ${files.map((f) => f.file).join(', ')}`);
  }
  // When each `agents` (dispatch) job and each results job ran, relative to the trigger: shows
  // whether the cycle waits on dispatch, on results, or on neither (latency).
  const timeline = {
    agents: await jobTimeline(ctx, 'reconcile', 'agents', t0),
    results: await jobTimeline(ctx, 'results', 'results', t0),
  };
  const cpu = cpuDelta(cpuBefore, cpuAfter);
  const verified = await verifyStatuses(ctx, sinceIso);
  // The deadline jobs (one per instruction, delayed 3 heartbeats) belong to the cycle's cost too.
  await waitQuiet(ctx, name, deadline);
  const windowMs = Date.now() - t0;
  const cmd = await allCommandStats(ctx);
  if (process.env.BENCH_SLOWLOG && ctx.redis instanceof Redis) await printSlowlog(ctx.redis, name);
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
    closed: stats.closed,
    verified,
    cpu,
    reconcilerGc: gcDelta(gcBefore, gcAfter),
    machine,
  };
}
