/** The `## Reconcile cycle` section of bench/RESULTS.md, from one run of bench/reconcile.ts. */
import { cpus } from 'node:os';
import type { PhaseResult } from './reconcile-phase.js';
import { type CpuSnapshot, controlMsPerAgent } from './reconcile-probes.js';

export interface ReportInput {
  agents: number;
  tasks: number;
  simProcs: number;
  drift: number;
  heartbeat: string;
  baselineJobs: number;
  implementation: string;
  connectMs: number;
  connectCpu: CpuSnapshot;
  warmMs: number;
  warmCpu: CpuSnapshot;
  memory: {
    gatewayRssBefore: number[];
    gatewayRssAfter: number[];
    gatewayKiBPerAgent: number;
    /** Of it, the JS heap (heapUsed) and ArrayBuffers/external. */
    gatewayHeapKiBPerAgent: number;
    gatewayExternalKiBPerAgent: number;
    redisUsedBefore: number;
    redisUsedAfter: number;
    redisKiBPerAgent: number;
    /** One agent's own keys (MEMORY USAGE), KiB, in all and by key shape. */
    agentOwnKiB: number;
    agentKeys: [string, number][];
  };
  gateways: number;
  reconcilers: number;
  sourceIps: number;
  redisCluster: boolean;
  fileLimit: number;
  /** CPU-ms of reconcile-machine.ts's fixed workload at the start (lower is faster). */
  calibrationMs: number;
  idleRate: number;
  phases: PhaseResult[];
  /** The raw BullMQ rate (null: not measured, on a cluster or with --baseline-jobs 0). */
  baseline: { jobs: number; totalMs: number; addMs: number; rate: number } | null;
  load: number[];
  totalS: number;
}

/** Control-plane CPU (reconcilers + gateways + Redis): CPU-s in all and ms per agent, what compares across machines. */
export function cpuCell(cpu: CpuSnapshot, agents: number): string {
  const total = cpu.reconciler + cpu.gateway + cpu.redis;
  return `${total.toFixed(1)} CPU-s = **${controlMsPerAgent(cpu, agents).toFixed(2)} ms/agent** (${((cpu.reconciler * 1000) / agents).toFixed(2)} + ${((cpu.gateway * 1000) / agents).toFixed(2)} + ${((cpu.redis * 1000) / agents).toFixed(2)})`;
}

/**
 * The RESULTS.md section a run writes: the one-process set-up keeps `## Reconcile cycle`; scaled
 * out and cluster runs get sections of their own beside it.
 */
export function reportHeading(r: Pick<ReportInput, 'gateways' | 'reconcilers' | 'redisCluster'>): string {
  if (r.redisCluster) return 'Reconcile cycle, Redis Cluster';
  return r.gateways > 1 || r.reconcilers > 1 ? 'Reconcile cycle, scaled out' : 'Reconcile cycle';
}

export function renderReport(r: ReportInput): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const mib = (b: number) => (b / 1048576).toFixed(1);
  const cpu = cpus()[0]?.model ?? 'unknown';
  const scale = `${r.gateways > 1 ? ` --gateways ${r.gateways}` : ''}${r.reconcilers > 1 ? ` --reconcilers ${r.reconcilers}` : ''}${r.sourceIps > 0 ? ` --source-ips ${r.sourceIps}` : ''}${r.redisCluster ? ' --redis-cluster' : ''}`;
  const cmd = `node --import tsx bench/reconcile.ts --agents ${r.agents} --tasks ${r.tasks} --sims ${r.simProcs} --drift ${r.drift} --heartbeat ${r.heartbeat} --baseline-jobs ${r.baselineJobs}${scale}`;
  const plural = (n: number, what: string) =>
    n === 1 ? `one \`fluke ${what}\`` : `${n} \`fluke ${what}\` processes`;
  const rows = r.phases.map((p) => {
    const jobs = p.reconcileJobs + p.resultJobs;
    const net = p.commands - p.backgroundCommands;
    const floorMs = r.baseline ? (jobs / r.baseline.rate) * 1000 : 0;
    return {
      p,
      jobs,
      line: `| ${p.name} (${p.trigger}) | **${s(p.cycleMs)}** | ${cpuCell(p.cpu, r.agents)} | ${s(p.firstRunMs)} | ${s(p.lastRunMs)} | ${p.runs} | ${p.drifted} | ${(jobs / r.agents).toFixed(3)} (${(p.reconcileJobs / r.agents).toFixed(3)} reconcile + ${(p.resultJobs / r.agents).toFixed(3)} results) | ${(net / r.agents).toFixed(0)} (raw ${(p.commands / r.agents).toFixed(0)}) | ${Math.round(jobs / (p.cycleMs / 1000))} | ${floorMs ? `${(p.cycleMs / floorMs).toFixed(2)}×` : '—'} | ${p.verified}${p.unacked > 0 ? `; ${p.unacked} results unacked` : ''}${p.retried > 0 ? `; ${p.retried} refused and re-sent` : ''}${p.overdue > 0 ? `; ${p.overdue} re-sent after 30 s` : ''}${p.closed > 0 ? `; ${p.closed} sockets closed and reconnected so far` : ''} |`,
    };
  });
  const commit = r.phases.find((p) => p.name === 'commit');
  const sat = r.phases.find((p) => p.name === 'satisfied');
  const lines = [
    `## ${reportHeading(r)}`,
    '',
    `Command: \`${cmd}\``,
    '',
    `Machine: ${cpus().length} × ${cpu} (shared with other work; load average at start ${r.load.map((l) => l.toFixed(1)).join(' / ')}), Node ${process.version}, ` +
      `${r.redisCluster ? 'Redis Cluster' : 'redis-server'} private, uWebSockets.js implementation: **${r.implementation}**; CPU calibration ${r.calibrationMs.toFixed(0)} CPU-ms (\`calibrationCpuMs\`, lower is faster). Date: ${new Date().toISOString().slice(0, 10)}. Whole run: ${r.totalS.toFixed(0)} s.`,
    '',
    `Set-up: ${plural(r.gateways, 'gateway')} and ${plural(r.reconcilers, 'reconciler')}, each a separate child process started through \`startServices\` ` +
      `(default worker concurrency: reconcile 50, results 8), Redis event store, drift policy \`remediate\`, heartbeat ${r.heartbeat}; ` +
      `${r.redisCluster ? 'a Redis Cluster (3 masters, 3 replicas) on loopback' : 'one private redis-server'}; ` +
      `${r.agents} simulated agents over ${r.simProcs} processes (\`ws\` clients${r.gateways > 1 ? ', agent k connected straight to gateway k mod ' + r.gateways : ''}${r.sourceIps > 0 ? `, source addresses spread over ${r.sourceIps} addresses of 127.0.0.0/8` : ''}; open-file limit ${r.fileLimit}), labels matching all ${r.tasks} tasks (one shell step each); ` +
      'each `run` answered at once with what the real agent sends for instant steps: a receipt, a task_result per task, and a check_result before each apply (drifted pairs); ' +
      'unacknowledged results re-sent as the agent does (after a `result_retry` delay, or 30 s). ' +
      `Cycles are triggered by one \`fanout\` job (trigger \`drift_check\`) on the reconcile queue; the commit case commits to the repo and calls \`pollNow\`. ` +
      `Cycle time = trigger → \`finishedOn\` of the last results job; Redis commands = INFO commandstats delta from trigger until every queue is quiet ` +
      `(the per-instruction deadline jobs, 3 heartbeats later, included), minus the idle background (${r.idleRate.toFixed(0)} commands/s: heartbeats, schedulers, idle workers). ` +
      `Lua scripts' inner calls are counted by Redis 7 as commands too.`,
    '',
    `Registration of ${r.agents} agents took ${s(r.connectMs)} (control plane ${cpuCell(r.connectCpu, r.agents)}); ` +
      `the connect-triggered reconciles finished ${s(r.warmMs)} after that (${cpuCell(r.warmCpu, r.agents)}).`,
    '',
    `Memory at rest after registration and the first cycle, minus before any agent: gateway RSS ${r.memory.gatewayRssBefore.map(mib).join(' + ')} → ${r.memory.gatewayRssAfter.map(mib).join(' + ')} MiB, ` +
      `**${r.memory.gatewayKiBPerAgent.toFixed(2)} KiB per agent** (marginal; target ≤ 1.5 KiB; of it JS heap ${r.memory.gatewayHeapKiBPerAgent.toFixed(2)} KiB, external ${r.memory.gatewayExternalKiBPerAgent.toFixed(2)} KiB); Redis used_memory ${mib(r.memory.redisUsedBefore)} → ${mib(r.memory.redisUsedAfter)} MiB, ` +
      `**${r.memory.redisKiBPerAgent.toFixed(2)} KiB per agent** (registry, ${r.tasks} statuses, instructions, events, and the queues' retained completed jobs, a fixed cost spread over the agents). ` +
      `One agent's own keys (MEMORY USAGE, sim-000000): ${r.memory.agentOwnKiB.toFixed(1)} KiB — ${r.memory.agentKeys
        .slice(0, 6)
        .map(([k, kib]) => `${k} ${kib.toFixed(1)}`)
        .join(', ')}.`,
    '',
    '| cycle | trigger → last result processed | control-plane CPU (reconciler + gateway + Redis ms/agent) | → first `run` at an agent | → last `run` | runs | drifted pairs | BullMQ jobs / agent | Redis commands / agent (net of idle) | jobs/s | × baseline time for the same jobs | statuses verified (sample) |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((x) => x.line),
    '',
    r.baseline
      ? `- **BullMQ baseline** (same Redis, same run): ${r.baseline.jobs} no-op jobs added with addBulk × 1000, one Worker at concurrency 50 in its own process: ` +
        `**${r.baseline.rate.toFixed(0)} jobs/s** (${s(r.baseline.totalMs)} in all, adds ${s(r.baseline.addMs)}). ` +
        `A cycle of ${sat ? ((sat.reconcileJobs + sat.resultJobs) / r.agents).toFixed(1) : '?'} jobs per agent over ${r.agents} agents therefore cannot beat ` +
        `${sat ? s(((sat.reconcileJobs + sat.resultJobs) / r.baseline.rate) * 1000) : '?'} on this Redis with this job layout; the last column is the cycle time divided by that floor.`
      : '- BullMQ baseline: not measured in this run.',
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
    `- Reconciler GC and the machine per cycle (V8 young generation ${mib(sat?.reconcilerGc.newSpace ?? 0)} MiB, heap limit ${mib(sat?.reconcilerGc.heapLimit ?? 0)} MiB): ${r.phases
      .map(
        (p) =>
          `${p.name}: ${p.reconcilerGc.minor} scavenges + ${p.reconcilerGc.major} mark-compacts, ${(p.reconcilerGc.gcMs / 1000).toFixed(2)} s in GC (${(p.reconcilerGc.gcMs / 10 / Math.max(p.cpu.reconciler, 0.001)).toFixed(0)} % of reconciler CPU); load ${p.machine.load1.toFixed(1)}, steal ${p.machine.stealPct.toFixed(1)} %, idle ${p.machine.idlePct.toFixed(0)} %, ${p.machine.mhz.toFixed(0)} MHz`,
      )
      .join('; ')}.`,
    `- Top Redis commands per agent in the satisfied cycle: ${sat ? sat.topCommands.map(([k, v]) => `${k} ${(v / r.agents).toFixed(1)}`).join(', ') : ''}.`,
    '',
  ];
  return lines.join('\n');
}
