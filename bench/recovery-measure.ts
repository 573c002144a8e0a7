/**
 * The clock of one recovery: from the fault until every agent is registered again (a registry
 * entry on a live gateway, and every agent whose socket dropped on a newer one) and until every
 * agent that must be re-checked has run an instruction since and has every result acknowledged.
 * Then the accounting once everything is quiet: results lost and double applies.
 */
import { sleep } from './reconcile-ipc.js';
import type { SimCounters } from './recovery-agent.js';
import {
  type Accounting,
  accountResults,
  counterDelta,
  registryLive,
  simsStats,
  waitSettled,
} from './recovery-probes.js';
import type { RecoveryRow } from './recovery-report.js';
import type { SimsStats } from './recovery-sims.js';
import type { RecoverySystem } from './recovery-system.js';

export interface Clock {
  /** Epoch ms of the fault. */
  t0: number;
  /** The killed gateway: its entries do not count as registered. */
  deadGateway: string | null;
  /** Who must be checked again: every agent, or those whose socket dropped. */
  scope: 'all' | 'disrupted';
  /** At least this many sockets must have dropped before `disrupted` means anything. */
  expectDisrupted: number;
  /** Runs at or after this time count as the re-check (default t0). */
  checkedSince?: number;
}

export interface Timed {
  registeredMs: number | null;
  checkedMs: number | null;
  last: SimsStats;
}

export async function timeRecovery(sys: RecoverySystem, c: Clock): Promise<Timed> {
  let registeredMs: number | null = null;
  const until = c.t0 + sys.opts.timeoutMs;
  for (;;) {
    const stats = await simsStats(sys, c.checkedSince ?? c.t0);
    const dropped = (await simsStats(sys, c.t0)).disrupted;
    // While Redis is away the registry cannot be read: nobody counts as registered.
    const live = await registryLive(sys, c.deadGateway).catch(() => 0);
    const now = Date.now();
    const registered =
      live === sys.opts.agents && dropped >= c.expectDisrupted && stats.reRegistered === stats.disrupted;
    if (registered) registeredMs ??= now - c.t0;
    else registeredMs = null;
    const checked =
      c.scope === 'all'
        ? stats.checked === sys.opts.agents
        : stats.checkedDisrupted === dropped && dropped >= c.expectDisrupted;
    if (registered && checked) return { registeredMs, checkedMs: now - c.t0, last: stats };
    if (now > until) {
      console.log(
        `  not recovered after ${((now - c.t0) / 1000).toFixed(0)} s: registry live ${live}, dropped ${dropped}, re-registered ${stats.reRegistered}, checked ${c.scope === 'all' ? stats.checked : stats.checkedDisrupted}; e.g. ${stats.missing.join(', ')}`,
      );
      await explainStuck(sys);
      return { registeredMs, checkedMs: null, last: stats };
    }
    await sleep(sys.opts.agents > 2000 ? 1000 : 250);
  }
}

/** What a recovery that never finished left behind: the queues and the source status. */
async function explainStuck(sys: RecoverySystem): Promise<void> {
  for (const [name, q] of Object.entries(sys.queues)) {
    const counts = await q.getJobCounts().catch(() => ({}));
    console.log(`  queue ${name}: ${JSON.stringify(counts)}`);
  }
  const source = await sys.redis.hgetall(sys.keys.sourceStatus()).catch(() => ({}));
  console.log(`  source status: ${JSON.stringify(source).slice(0, 400)}`);
}

/** Quiet, then what was lost and applied twice since `before`. */
export async function account(
  sys: RecoverySystem,
  before: SimCounters,
): Promise<{ acc: Accounting; delta: SimCounters; settled: boolean; unacked: number }> {
  const s = await waitSettled(sys, Date.now() + sys.opts.timeoutMs);
  if (!s.settled) console.log(`  not settled: ${s.unacked} results unacknowledged, ${s.queued} jobs queued`);
  const acc = await accountResults(sys);
  const delta = counterDelta((await simsStats(sys, 0)).counters, before);
  return { acc, delta, settled: s.settled, unacked: s.unacked };
}

export function rowOf(
  sys: RecoverySystem,
  id: string,
  title: string,
  timed: Timed,
  a: Awaited<ReturnType<typeof account>>,
  notes: string[],
): RecoveryRow {
  const d = a.delta;
  const extra = [
    `${d.reconnects} reconnects`,
    d.resentOnRegister ? `${d.resentOnRegister} results re-sent on registration` : '',
    d.duplicates ? `${d.duplicates} re-delivered instructions refused as duplicates` : '',
    d.repeatChecks ? `${d.repeatChecks} repeated checks` : '',
    d.busy ? `${d.busy} refused busy` : '',
    d.credentialRejected ? `${d.credentialRejected} credentials rejected` : '',
    d.refusals ? `${d.refusals} refusals` : '',
    a.acc.timeouts ? `${a.acc.timeouts} statuses \`timeout\`` : '',
    a.settled ? '' : `not quiet: ${a.unacked} results unacknowledged`,
    ...a.acc.lostSample.slice(0, 2).map((l) => `lost e.g. ${l}`),
  ].filter(Boolean);
  return {
    id,
    title,
    agents: sys.opts.agents,
    tasks: sys.opts.tasks,
    registeredS: timed.registeredMs === null ? null : timed.registeredMs / 1000,
    checkedS: timed.checkedMs === null ? null : timed.checkedMs / 1000,
    resultsSent: d.results,
    lost: a.acc.lost + a.unacked,
    doubleApplies: d.doubleApplies,
    reApplies: d.reApplies,
    notes: [...notes, ...extra].join('; '),
    source: 'bench/recovery.ts',
  };
}
