/**
 * The faults of bench/recovery.ts. Each starts a phase (10 % of (agent, task) pairs drifted, so a
 * re-check applies and a repeated instruction would apply twice), does its fault, times the way
 * back (recovery-measure.ts), waits until everything is quiet, accounts, and puts a killed process
 * back (untimed) so the next scenario starts from a whole system.
 */
import { ask, sleep } from './reconcile-ipc.js';
import type { BackendKind } from './recovery-backend.js';
import { account, type Clock, rowOf, timeRecovery } from './recovery-measure.js';
import { registryLive, simsStats } from './recovery-probes.js';
import type { RecoveryRow } from './recovery-report.js';
import { killNow, type RecoverySystem, type Role } from './recovery-system.js';

export interface Scenario {
  id: string;
  title: string;
  backend: BackendKind;
  run(sys: RecoverySystem, drift: number): Promise<RecoveryRow>;
}

async function startPhase(sys: RecoverySystem, name: string, drift: number, since: number): Promise<void> {
  await Promise.all(
    sys.sims.map((s) => ask(s, { type: 'phase', name: `${name}-${since}`, drift, since }, 'phased')),
  );
}

/** A Redis fault: every agent must be registered and checked again. */
function redisFault(
  id: string,
  title: string,
  backend: BackendKind,
  fault: (sys: RecoverySystem) => Promise<string>,
): Scenario {
  return {
    id,
    title,
    backend,
    async run(sys, drift) {
      const before = (await simsStats(sys, 0)).counters;
      const t0 = Date.now();
      await startPhase(sys, id, drift, t0);
      const note = await fault(sys);
      const timed = await timeRecovery(sys, { t0, deadGateway: null, scope: 'all', expectDisrupted: 0 });
      return rowOf(sys, id, title, timed, await account(sys, before), [note]);
    },
  };
}

/** The gateway holding the most agents now (after an earlier kill the other one holds them all). */
async function busiestGateway(sys: RecoverySystem): Promise<{ dead: Role; held: number }> {
  const all = await registryLive(sys, null);
  let best: { dead: Role; held: number } | null = null;
  for (const g of sys.gateways) {
    const held = all - (await registryLive(sys, g.id));
    if (g.process && (!best || held > best.held)) best = { dead: g, held };
  }
  if (!best) throw new Error('no gateway is running');
  return best;
}

export const gatewayKill: Scenario = {
  id: 'gateway-kill',
  title: 'kill -9 the busier of two gateways; its agents reconnect to the other (no balancer: next address)',
  backend: 'single',
  async run(sys, drift) {
    const { dead, held } = await busiestGateway(sys);
    const before = (await simsStats(sys, 0)).counters;
    const t0 = Date.now();
    await startPhase(sys, 'gateway-kill', drift, t0);
    if (dead.process) await killNow(dead.process);
    const clock: Clock = { t0, deadGateway: dead.id, scope: 'disrupted', expectDisrupted: held };
    const timed = await timeRecovery(sys, clock);
    const row = rowOf(sys, this.id, this.title, timed, await account(sys, before), [
      `${held} agents were on the killed gateway`,
    ]);
    await sys.startRole(dead, 'gateway');
    return row;
  },
};

/** Fan out a drift check over every agent; resolves mid-cycle (a third checked) with its start. */
async function midCycle(
  sys: RecoverySystem,
  id: string,
  drift: number,
): Promise<{ trigger: number; progress: number }> {
  const trigger = Date.now();
  await startPhase(sys, id, drift, trigger);
  await sys.queues.reconcile.add('fanout', { trigger: 'drift_check', run_id: null, task: null, agent: null });
  for (;;) {
    const s = await simsStats(sys, trigger);
    if (s.checked >= sys.opts.agents / 3) return { trigger, progress: s.checked };
    if (Date.now() - trigger > sys.opts.timeoutMs) throw new Error('the drift cycle never got going');
    await sleep(50);
  }
}

function cycleNote(
  progress: number,
  sys: RecoverySystem,
  trigger: number,
  t0: number,
  checkedMs: number | null,
): string {
  const done = checkedMs === null ? 'never' : `${((checkedMs + t0 - trigger) / 1000).toFixed(1)} s`;
  return `killed with ${progress}/${sys.opts.agents} agents checked, ${((t0 - trigger) / 1000).toFixed(1)} s after the fan-out; cycle done ${done} after it`;
}

export const gatewayKillMidCycle: Scenario = {
  id: 'gateway-kill-mid-cycle',
  title:
    'kill -9 one of two gateways in the middle of a drift cycle over every agent (results and instructions in flight)',
  backend: 'single',
  async run(sys, drift) {
    const { dead, held } = await busiestGateway(sys);
    const before = (await simsStats(sys, 0)).counters;
    const { trigger, progress } = await midCycle(sys, this.id, drift);
    const t0 = Date.now();
    if (dead.process) await killNow(dead.process);
    const clock: Clock = {
      t0,
      deadGateway: dead.id,
      scope: 'all',
      expectDisrupted: held,
      checkedSince: trigger,
    };
    const timed = await timeRecovery(sys, clock);
    const notes = [
      `${held} agents were on the killed gateway`,
      cycleNote(progress, sys, trigger, t0, timed.checkedMs),
    ];
    const row = rowOf(sys, this.id, this.title, timed, await account(sys, before), notes);
    await sys.startRole(dead, 'gateway');
    return row;
  },
};

export const reconcilerKill: Scenario = {
  id: 'reconciler-kill',
  title:
    'kill -9 one of two reconcilers in the middle of a drift cycle over every agent; the other finishes it',
  backend: 'single',
  async run(sys, drift) {
    const [dead] = sys.reconcilers;
    if (!dead?.process) throw new Error('reconciler-a is not running');
    const before = (await simsStats(sys, 0)).counters;
    const { trigger, progress } = await midCycle(sys, this.id, drift);
    const t0 = Date.now();
    await killNow(dead.process);
    const clock: Clock = { t0, deadGateway: null, scope: 'all', expectDisrupted: 0, checkedSince: trigger };
    const timed = await timeRecovery(sys, clock);
    const notes = [cycleNote(progress, sys, trigger, t0, timed.checkedMs)];
    const row = rowOf(sys, this.id, this.title, timed, await account(sys, before), notes);
    await sys.startRole(dead, 'reconciler');
    return row;
  },
};

export const flushAll = redisFault(
  'flushall',
  'FLUSHALL of Redis: everything rebuilt from Git and the agents',
  'single',
  async (sys) => {
    await sys.redis.flushall();
    return 'FLUSHALL, sockets kept';
  },
);

export const redisRestart = redisFault(
  'redis-restart',
  'kill -9 redis-server, start it again empty (same port)',
  'single',
  async (sys) => {
    const r = sys.backend.single;
    if (!r) throw new Error('redis-restart needs a single redis-server');
    const t = Date.now();
    await r.kill();
    await r.restart();
    return `Redis down ${((Date.now() - t) / 1000).toFixed(1)} s`;
  },
);

export const clusterFailover = redisFault(
  'cluster-failover',
  'Redis Cluster (3 masters + 3 replicas): kill -9 the master of the gateways’ instruction streams; its replica takes over',
  'cluster',
  async (sys) => {
    const c = sys.backend.cluster;
    if (!c) throw new Error('cluster-failover needs a cluster');
    const t = Date.now();
    const { killed, promoted } = await c.failover(sys.keys.gatewayInbox('gateway-a'));
    return `master :${killed.port} → replica :${promoted.port} serving in ${((Date.now() - t) / 1000).toFixed(1)} s`;
  },
);

export const sentinelFailover = redisFault(
  'sentinel-failover',
  'Sentinel (master + replica, 3 Sentinels): kill -9 the master; Sentinels promote the replica',
  'sentinel',
  async (sys) => {
    const s = sys.backend.sentinel;
    if (!s) throw new Error('sentinel-failover needs Sentinels');
    const t = Date.now();
    const { killed, promoted } = await s.failover();
    return `master :${killed} → :${promoted} promoted in ${((Date.now() - t) / 1000).toFixed(1)} s`;
  },
);

export const SCENARIOS: Scenario[] = [
  gatewayKill,
  gatewayKillMidCycle,
  reconcilerKill,
  flushAll,
  redisRestart,
  clusterFailover,
  sentinelFailover,
];
