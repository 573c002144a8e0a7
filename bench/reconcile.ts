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
 *     [--heartbeat 10s] [--baseline-jobs 50000] [--phase-timeout-s 300] [--cpu-prof] [--prof-phase satisfied]
 *     [--gateways 1] [--reconcilers 1] [--source-ips 0] [--redis-cluster] [--write]
 *   --gateways N / --reconcilers M: that many role processes; agent k connects straight to gateway
 *   k mod N. --source-ips K: agent k's socket is bound to the (k mod K)-th address of 127.0.0.0/8,
 *   each with its own ephemeral ports (50,000 sockets: use ≥ 4; and --sims so that each simulator
 *   holds fewer sockets than `ulimit -n`). --redis-cluster: 3 masters + 3 replicas
 *   (testkit/redis-cluster.ts), roles configured with `cluster_nodes`. --baseline-jobs 0: no
 *   BullMQ baseline (it is skipped on a cluster anyway).
 *   Every wall time is reported with the control-plane CPU it took (reconcilers + gateways +
 *   Redis, ms per agent; reconcile-machine.ts reads /proc), and each run with a CPU calibration,
 *   the reconcilers' GC, steal time and clock, so runs on different machines can be compared.
 *   The simulated agents send what the real agent sends for instant steps (bench/reconcile-sims.ts).
 *   The parts: reconcile-system.ts (start and tear down), reconcile-phase.ts (one measured cycle),
 *   reconcile-probes.ts (what is read), reconcile-report.ts (the RESULTS.md section),
 *   reconcile-ipc.ts (talking to the children); the children: reconcile-roles.ts (gateway,
 *   reconciler, BullMQ baseline) and reconcile-sims.ts (the simulated agents).
 *   --write: replace the `## Reconcile cycle` section of bench/RESULTS.md (`## Reconcile cycle, scaled
 *   out` with several gateways or reconcilers, `## Reconcile cycle, Redis Cluster` on a cluster).
 */
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pollNow } from '../store/queues/schedules.js';
import type { TestRepo } from '../testkit/git-repo.js';
import { AGENT_TOKEN } from '../testkit/system.js';
import { sleep, spawnChild, stop, waitFor } from './reconcile-ipc.js';
import { calibrationCpuMs, openFileLimit } from './reconcile-machine.js';
import { type PhaseResult, runPhase } from './reconcile-phase.js';
import {
  agentKeyBytes,
  allCommandStats,
  busy,
  type CpuSnapshot,
  type Ctx,
  controlMsPerAgent,
  cpuDelta,
  cpuSnapshot,
  redisUsedMemory,
  resetStats,
  restMemory,
  simStats,
  waitQuiet,
} from './reconcile-probes.js';
import { type ReportInput, renderReport, reportHeading } from './reconcile-report.js';
import { runBaseline, runRole } from './reconcile-roles.js';
import { runSims } from './reconcile-sims.js';
import { manifest, type System, withSystem } from './reconcile-system.js';
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
    gateways: { type: 'string', default: '1' },
    reconcilers: { type: 'string', default: '1' },
    'source-ips': { type: 'string', default: '0' },
    'redis-cluster': { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    // children
    child: { type: 'string' },
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    url: { type: 'string' },
    count: { type: 'string' },
    instance: { type: 'string' },
    offset: { type: 'string' },
    proc: { type: 'string' },
    redis: { type: 'string' },
    prefix: { type: 'string' },
    jobs: { type: 'string' },
    concurrency: { type: 'string' },
  },
});

async function main(): Promise<void> {
  const agents = Number(args.agents);
  const tasks = Number(args.tasks);
  const simProcs = Math.max(1, Number(args.sims));
  const drift = Number(args.drift);
  const timeoutMs = Number(args['phase-timeout-s']) * 1000;
  const baselineJobs = Number(args['baseline-jobs']);
  const heartbeat = args.heartbeat ?? '10s';
  const started = Date.now();
  const load = loadavg();
  const calibrationMs = calibrationCpuMs();
  console.log(
    `CPU calibration: ${calibrationMs.toFixed(0)} CPU-ms for the fixed JS workload (lower is faster)`,
  );
  console.log(
    `${agents} agents × ${tasks} tasks, ${simProcs} simulator processes; load average ${load.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const profDir = join(
    dirname(SELF),
    'out',
    `reconcile-prof-${new Date().toISOString().replace(/[:.]/g, '-')}`,
  );
  const options = {
    agents,
    tasks,
    simProcs,
    timeoutMs,
    heartbeat,
    roleFlags: args['role-flags'] ?? '',
    cpuProf: args['cpu-prof'] ?? false,
    profDir,
    profPhase: args['prof-phase'],
    gateways: Math.max(1, Number(args.gateways)),
    reconcilers: Math.max(1, Number(args.reconcilers)),
    sourceIps: Number(args['source-ips']),
    redisCluster: args['redis-cluster'] ?? false,
  };
  await withSystem(
    options,
    async ({ ctx, repo, redisServer, implementation, connectMs, connectCpu, before }) => {
      const warm = await warmUp(ctx);
      const memory = await memoryPerAgent(ctx, before);
      ctx.idleRate = await idleRate(ctx);
      console.log(`idle background: ${ctx.idleRate.toFixed(0)} Redis commands/s`);

      const fanout = (trigger: 'drift_check' | 'commit') => async () => {
        await ctx.queues.reconcile.add('fanout', { trigger, run_id: null, task: null, agent: null });
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
      const commit = await commitPhase(ctx, repo);
      phases.push(commit);
      console.log(JSON.stringify(commit));

      // A BullMQ queue of its own on one node of a cluster would not say more than on one Redis.
      const baseline =
        redisServer.url && baselineJobs > 0
          ? await measureBaseline(redisServer.url, redisServer.prefix, baselineJobs, timeoutMs)
          : null;
      const report = renderReport({
        agents,
        tasks,
        simProcs,
        drift,
        heartbeat,
        baselineJobs,
        implementation,
        connectMs,
        connectCpu,
        warmMs: warm.ms,
        warmCpu: warm.cpu,
        memory,
        gateways: options.gateways,
        reconcilers: options.reconcilers,
        sourceIps: options.sourceIps,
        redisCluster: options.redisCluster,
        fileLimit: openFileLimit().soft,
        calibrationMs,
        idleRate: ctx.idleRate,
        phases,
        baseline,
        load,
        totalS: (Date.now() - started) / 1000,
      });
      console.log(report);
      if (args.write) writeResultsSection(reportHeading(options), report);
      if (args['cpu-prof']) console.log(`CPU profiles (written on exit): ${profDir}`);
    },
  );
}

/** Every registration enqueued a `connect` reconcile: let that first cycle finish, deadlines included. */
async function warmUp(ctx: Ctx): Promise<{ ms: number; cpu: CpuSnapshot }> {
  const cpuBefore = await cpuSnapshot(ctx);
  const warmStart = Date.now();
  for (const until = Date.now() + ctx.timeoutMs; ; ) {
    const s = await simStats(ctx.sims);
    if (s.runs >= ctx.agents && (await busy(ctx.queues, false)) === 0) {
      if (s.acked < s.results)
        console.log(`warm-up: ${s.results - s.acked} results never acknowledged by the gateway`);
      break;
    }
    if (Date.now() > until)
      throw new Error(`connect reconciles did not finish (runs ${s.runs}, sockets closed ${s.closed})`);
    await sleep(500);
  }
  const warmMs = Date.now() - warmStart;
  const cpu = cpuDelta(cpuBefore, await cpuSnapshot(ctx));
  await waitQuiet(ctx, 'warm-up', Date.now() + ctx.timeoutMs);
  console.log(
    `connect-triggered reconciles done ${(warmMs / 1000).toFixed(1)} s after the last registration (control plane ${controlMsPerAgent(cpu, ctx.agents).toFixed(2)} CPU-ms per agent)`,
  );
  return { ms: warmMs, cpu };
}

/**
 * Memory the agents cost, at rest after registration and their first cycle: gateways' RSS (forced
 * GCs, heap stable) and Redis used_memory (registry, statuses, events, instructions), minus the
 * same read before any agent connected, per agent.
 */
async function memoryPerAgent(ctx: Ctx, before: System['before']): Promise<ReportInput['memory']> {
  const gateways = await restMemory(ctx.gateways);
  const gatewayRss = gateways.map((g) => g.rss);
  const beforeRss = before.gateways.map((g) => g.rss);
  const heapDelta = gateways.reduce((s, g, i) => s + g.heapUsed - (before.gateways[i]?.heapUsed ?? 0), 0);
  const externalDelta = gateways.reduce((s, g, i) => s + g.external - (before.gateways[i]?.external ?? 0), 0);
  const redisUsed = await redisUsedMemory(ctx.redisNodes);
  const sample = await agentKeyBytes(ctx, 'sim-000000');
  const ownBytes = [...sample.values()].reduce((s, b) => s + b, 0);
  const rssDelta = gatewayRss.reduce((s, r, i) => s + r - (beforeRss[i] ?? 0), 0);
  const memory = {
    gatewayRssBefore: beforeRss,
    gatewayHeapKiBPerAgent: heapDelta / 1024 / ctx.agents,
    gatewayExternalKiBPerAgent: externalDelta / 1024 / ctx.agents,
    gatewayRssAfter: gatewayRss,
    gatewayKiBPerAgent: rssDelta / 1024 / ctx.agents,
    redisUsedBefore: before.redisUsed,
    redisUsedAfter: redisUsed,
    redisKiBPerAgent: (redisUsed - before.redisUsed) / 1024 / ctx.agents,
    agentOwnKiB: ownBytes / 1024,
    agentKeys: [...sample.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, b]): [string, number] => [k, b / 1024]),
  };
  console.log(
    `memory at rest: gateway RSS ${beforeRss.map(mib).join('+')} → ${gatewayRss.map(mib).join('+')} MiB (${memory.gatewayKiBPerAgent.toFixed(2)} KiB per agent, JS heap ${memory.gatewayHeapKiBPerAgent.toFixed(2)}, external ${memory.gatewayExternalKiBPerAgent.toFixed(2)}); ` +
      `Redis used_memory ${mib(before.redisUsed)} → ${mib(redisUsed)} MiB (${memory.redisKiBPerAgent.toFixed(2)} KiB per agent)`,
  );
  return memory;
}

const mib = (b: number) => (b / 1048576).toFixed(1);

/** Background Redis commands per second: heartbeats, scheduler upserts, idle workers. */
async function idleRate(ctx: Ctx): Promise<number> {
  await resetStats(ctx);
  const idleStart = Date.now();
  await sleep(10_000);
  const idle = await allCommandStats(ctx);
  const idleCommands = [...idle.entries()]
    .filter(([k]) => k !== 'info' && k !== 'config')
    .reduce((s, [, v]) => s + v.calls, 0);
  return (idleCommands * 1000) / (Date.now() - idleStart);
}

/** A commit: only the first task changes; every agent gets the new revision. */
async function commitPhase(ctx: Ctx, repo: TestRepo): Promise<PhaseResult> {
  const commitAt: { t0: number } = { t0: 0 };
  const commitPhase = await runPhase(
    ctx,
    'commit',
    0,
    async () => {
      await repo.commit(manifest(ctx.tasks, `v2-${Date.now()}`));
      commitAt.t0 = Date.now();
      await pollNow(ctx.queues);
    },
    'git commit + pollNow',
  );
  const status = JSON.parse((await ctx.redis.hget(ctx.keys.sourceStatus(), 'status')) ?? '{}') as {
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
  return commitPhase;
}

/** The raw BullMQ job rate on the same Redis, in a child of its own. */
async function measureBaseline(
  url: string,
  prefix: string,
  baselineJobs: number,
  timeoutMs: number,
): Promise<ReportInput['baseline']> {
  const baselineChild = spawnChild([
    '--child',
    'baseline',
    '--redis',
    url,
    '--prefix',
    prefix,
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
  return {
    jobs: Number(baseline.jobs),
    totalMs: Number(baseline.totalMs),
    addMs: Number(baseline.addMs),
    rate: baselineRate,
  };
}

if (args.child === 'gateway' || args.child === 'reconciler') {
  await runRole(args.child, args.config ?? '', args['data-dir'] ?? tmpdir(), Number(args.instance ?? 0));
} else if (args.child === 'sims') {
  await runSims({
    urls: (args.url ?? '').split(','),
    sourceIps: Number(args['source-ips'] ?? 0),
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
