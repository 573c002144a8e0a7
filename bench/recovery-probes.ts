/**
 * What bench/recovery.ts reads while the system heals: the simulators' counters, the registry
 * entries in Redis, the queues, and at the end the task statuses beside what the agents executed.
 */
import { pipelineOf } from '../store/redis/pipeline.js';
import { ask, type Msg, sleep } from './reconcile-ipc.js';
import type { SimCounters } from './recovery-agent.js';
import { emptySimsStats, newCounters, type SimsStats } from './recovery-sims.js';
import type { RecoverySystem } from './recovery-system.js';

export async function simsStats(sys: RecoverySystem, since: number): Promise<SimsStats> {
  const all = (await Promise.all(
    sys.sims.map((s) => ask(s, { type: 'stats', since }, 'stats', 60_000)),
  )) as unknown as SimsStats[];
  const sum = emptySimsStats();
  for (const s of all) {
    for (const k of [
      'agents',
      'registeredNow',
      'disrupted',
      'reRegistered',
      'checked',
      'checkedDisrupted',
      'unacked',
    ] as const)
      sum[k] += s[k];
    sum.missing.push(...s.missing);
    for (const k of Object.keys(sum.counters) as (keyof SimCounters)[]) sum.counters[k] += s.counters[k];
  }
  return sum;
}

export function counterDelta(after: SimCounters, before: SimCounters): SimCounters {
  const d = newCounters();
  for (const k of Object.keys(d) as (keyof SimCounters)[]) d[k] = after[k] - before[k];
  return d;
}

/** Agents whose registry entry exists in Redis and names a gateway other than `deadGateway`. */
export async function registryLive(sys: RecoverySystem, deadGateway: string | null): Promise<number> {
  let live = 0;
  for (let i = 0; i < sys.agentNames.length; i += 2000) {
    const pipe = pipelineOf(sys.redis);
    for (const name of sys.agentNames.slice(i, i + 2000)) pipe.hget(sys.keys.agent(name), 'gateway_id');
    for (const [err, gw] of (await pipe.exec()) ?? [])
      if (!err && typeof gw === 'string' && gw !== deadGateway) live++;
  }
  return live;
}

/**
 * Jobs waiting or active in the reconcile and results queues, plus the delayed ones that belong to
 * the work (instruction deadlines, retries); the drift tick's own delayed job does not count.
 */
export async function queuedJobs(sys: RecoverySystem): Promise<number> {
  const states = ['waiting', 'active', 'prioritized', 'waiting-children'] as const;
  const counts = await Promise.all([
    sys.queues.reconcile.getJobCounts(...states),
    sys.queues.results.getJobCounts(...states),
  ]);
  const delayed = (await sys.queues.reconcile.getDelayed(0, -1)).filter(
    (j) => j.name === 'deadline' || j.name === 'deadlines' || j.attemptsMade > 0,
  ).length;
  return delayed + counts.reduce((s, c) => s + Object.values(c).reduce((a, b) => a + b, 0), 0);
}

/** Until nothing is queued and no agent holds an unacknowledged result (or `deadline`). */
export async function waitSettled(
  sys: RecoverySystem,
  deadline: number,
  everyAgentRan = false,
): Promise<{ settled: boolean; unacked: number; queued: number }> {
  for (;;) {
    const [stats, queued] = await Promise.all([simsStats(sys, 0), queuedJobs(sys).catch(() => -1)]);
    const ran = !everyAgentRan || stats.checked === stats.agents;
    if (ran && stats.unacked === 0 && queued === 0) return { settled: true, unacked: 0, queued };
    if (Date.now() > deadline) return { settled: false, unacked: stats.unacked, queued };
    await sleep(1000);
  }
}

export interface Accounting {
  /** (agent, task) pairs whose last execution's result is what the status names. */
  recorded: number;
  /** …whose status names an older execution, or none: a result lost. */
  lost: number;
  /** Statuses the reconciler judged `timeout` (an instruction whose results never came). */
  timeouts: number;
  lostSample: string[];
}

/** The agents' last execution per task against the task statuses in Redis. */
export async function accountResults(sys: RecoverySystem): Promise<Accounting> {
  const replies = await Promise.all(sys.sims.map((s) => ask(s, { type: 'latest' }, 'latest', 120_000)));
  const executed = new Map<string, Record<string, string>>();
  for (const m of replies as Msg[])
    for (const [a, t] of Object.entries(m.executions as Record<string, Record<string, string>>))
      executed.set(a, t);
  const out: Accounting = { recorded: 0, lost: 0, timeouts: 0, lostSample: [] };
  const names = [...executed.keys()];
  for (let i = 0; i < names.length; i += 1000) {
    const chunk = names.slice(i, i + 1000);
    const pipe = pipelineOf(sys.redis);
    for (const name of chunk) pipe.hgetall(sys.keys.taskStatus(name));
    const rows = (await pipe.exec()) ?? [];
    chunk.forEach((name, j) => {
      const statuses = (rows[j]?.[1] ?? {}) as Record<string, string>;
      for (const [task, executionId] of Object.entries(executed.get(name) ?? {})) {
        const raw = statuses[task];
        const status = raw ? (JSON.parse(raw) as { execution_id?: string; outcome?: string }) : null;
        if (status?.outcome === 'timeout') out.timeouts++;
        if (status?.execution_id === executionId) out.recorded++;
        else {
          out.lost++;
          if (out.lostSample.length < 5)
            out.lostSample.push(
              `${name}/${task}: ran ${executionId}, status ${status?.execution_id ?? 'none'} (${status?.outcome ?? '-'})`,
            );
        }
      }
    });
  }
  return out;
}
