/** The `## Reconcile cycle` section of bench/RESULTS.md, from one run of bench/reconcile.ts. */
import { cpus } from 'node:os';
import type { PhaseResult } from './reconcile-phase.js';

export interface ReportInput {
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
}

export function renderReport(r: ReportInput): string {
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
