/**
 * Reconnect-storm benchmark: a private redis-server, a reconciler, gateways A and B (child
 * processes wired as `fluke reconciler` / `fluke gateway`), Debian haproxy running the shipped
 * infra/haproxy/haproxy.cfg in front of both (two or more instances, an LB pair, when one cannot
 * hold the fleet under this box's fd limit), and N simulated agents × T tasks that behave as the
 * real agent through a gateway's death (bench/storm-sims.ts). The fleet settles on A (B not yet
 * started), B starts, then A is killed with SIGKILL and the way back is timed:
 *   - until every agent is registered again (on B), and registrations/s per gateway;
 *   - until every agent got its connect check (a `run` on the new session), and until every
 *     result is acknowledged and the queues are drained;
 *   - Redis commands per registration and per agent; CPU seconds of B, the reconciler and Redis;
 *   - results lost (unacknowledged or dropped at the end: must be 0), and double applies (a
 *     drifted task applied twice, or an instruction id delivered again: must be 0).
 *
 *   node --import tsx bench/storm.ts [--agents 10000] [--tasks 20] [--sims 4] [--drift 0.1]
 *     [--heartbeat 10s] [--timeout-s 300] [--monitor] [--cpu-prof] [--haproxy-cfg FILE] [--label TEXT] [--write]
 *   --monitor: count the gateway's own Redis commands per registration with MONITOR (slows
 *     Redis: run it apart from the timed figures). --write: replace the `## Reconnect storm`
 *     section of bench/RESULTS.md. --haproxy-cfg: a variant of infra/haproxy/haproxy.cfg to compare.
 */
import { execFileSync } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AGENT_TOKEN } from '../testkit/system.js';
import { ask, sleep, stop } from './reconcile-ipc.js';
import { busy } from './reconcile-probes.js';
import { runRole } from './reconcile-roles.js';
import { writeResultsSection } from './results-file.js';
import { cpuSeconds, fleetStats, monitorRoundTrips, redisCommands, redisCpu } from './storm-probes.js';
import { renderStorm, type StormResult } from './storm-report.js';
import { runStormSims } from './storm-sims.js';
import { type StormSystem, withStormSystem } from './storm-system.js';

const SELF = fileURLToPath(import.meta.url);
const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    tasks: { type: 'string', default: '20' },
    sims: { type: 'string', default: '4' },
    drift: { type: 'string', default: '0.1' },
    heartbeat: { type: 'string', default: '10s' },
    'timeout-s': { type: 'string', default: '300' },
    monitor: { type: 'boolean', default: false },
    'haproxy-cfg': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    label: { type: 'string', default: '' },
    write: { type: 'boolean', default: false },
    // children
    child: { type: 'string' },
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    'gateway-id': { type: 'string' },
    url: { type: 'string' },
    count: { type: 'string' },
    offset: { type: 'string' },
  },
});

function revision(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: dirname(SELF),
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const agents = Number(args.agents);
  const tasks = Number(args.tasks);
  const drift = Number(args.drift);
  const timeoutMs = Number(args['timeout-s']) * 1000;
  const load = loadavg();
  const started = Date.now();
  console.log(`${agents} agents × ${tasks} tasks; load average ${load.map((l) => l.toFixed(2)).join(' ')}`);
  const profDir = join(dirname(SELF), 'out', `storm-prof-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const options = {
    agents,
    tasks,
    simProcs: Math.max(1, Number(args.sims)),
    heartbeat: args.heartbeat ?? '10s',
    cpuProf: args['cpu-prof'] ?? false,
    profDir,
    haproxyCfg: args['haproxy-cfg'] ?? null,
  };
  await withStormSystem(options, async (sys) => {
    const settle = await settleOnA(sys, agents, timeoutMs);
    const gatewayB = await sys.startGatewayB();
    const storm = await killA(sys, gatewayB.pid ?? 0, agents, drift, timeoutMs);
    const result: StormResult = {
      label: args.label || revision(),
      agents,
      tasks,
      drift,
      heartbeat: options.heartbeat,
      lbs: sys.lbs.length,
      maxconnLowered: sys.maxconnLowered,
      haproxyCfg: options.haproxyCfg,
      load,
      loadAfter: loadavg(),
      totalS: (Date.now() - started) / 1000,
      settle,
      ...storm,
    };
    const report = renderStorm(result);
    console.log(JSON.stringify(result));
    console.log(report);
    if (args.write) writeResultsSection('Reconnect storm', report);
    if (options.cpuProf) {
      await stop(gatewayB);
      console.log(`CPU profiles: ${profDir}`);
    }
  });
}

/** Every agent through haproxy onto A, registered and connect-checked, results acked, queues idle. */
async function settleOnA(sys: StormSystem, agents: number, timeoutMs: number) {
  const t0 = Date.now();
  let registeredMs = 0;
  for (const sim of sys.sims) sim.send({ type: 'connect' });
  const s = await untilFleet(sys, timeoutMs, 'settle', (f) => {
    if (!registeredMs && f.agentsRegistered >= agents) registeredMs = Date.now() - t0;
    return f.agentsChecked >= agents && f.pending === 0;
  });
  await untilQuiet(sys, timeoutMs);
  const spanS = ((s.lastRegisteredAt ?? 0) - (s.firstRegisteredAt ?? 0)) / 1000;
  const out = {
    registeredS: registeredMs / 1000,
    checkedS: ((s.lastCheckedAt ?? t0) - t0) / 1000,
    perSecond: spanS > 0 ? s.registrations / spanS : 0,
    byGateway: s.byGateway,
  };
  console.log(`settled on A: ${JSON.stringify(out)}`);
  return out;
}

async function untilFleet(
  sys: StormSystem,
  timeoutMs: number,
  what: string,
  done: (f: Awaited<ReturnType<typeof fleetStats>>) => boolean,
) {
  let said = Date.now();
  for (const until = Date.now() + timeoutMs; ; ) {
    const f = await fleetStats(sys.sims);
    if (done(f)) return f;
    if (Date.now() - said > 5000) {
      said = Date.now();
      const {
        agentsRegistered: reg,
        agentsChecked: checked,
        pending,
        closeCodes: closes,
        refusedUpgrades: up,
      } = f;
      console.log(`  ${what}: ${JSON.stringify({ reg, checked, pending, closes, up, gw: f.byGateway })}`);
    }
    if (Date.now() > until) throw new Error(`${what}: not done in time: ${JSON.stringify(f)}`);
    await sleep(200);
  }
}

async function untilQuiet(sys: StormSystem, timeoutMs: number): Promise<void> {
  for (const until = Date.now() + timeoutMs; (await busy(sys.queues, false)) > 0; ) {
    if (Date.now() > until) throw new Error('queues not drained in time');
    await sleep(200);
  }
}

async function killA(sys: StormSystem, pidB: number, agents: number, drift: number, timeoutMs: number) {
  await Promise.all(
    sys.sims.map((s) => ask(s, { type: 'storm', name: 'storm', drift, salt: `${Date.now()}` }, 'stormed')),
  );
  await sys.redis.config('RESETSTAT');
  const monitor = args.monitor
    ? await monitorRoundTrips(sys.redisServer.client(), sys.redisServer.port)
    : null;
  const cpu0 = {
    b: cpuSeconds(pidB),
    reconciler: cpuSeconds(sys.reconciler.pid),
    redis: await redisCpu(sys.redis),
  };
  const t0 = Date.now();
  sys.gatewayA.kill('SIGKILL');
  let registeredAt = 0;
  let gatewayRoundTrips: { total: number; byCommand: Record<string, number> } | null = null;
  const f = await untilFleet(sys, timeoutMs, 'storm', (s) => {
    if (!registeredAt && s.agentsRegistered >= agents) {
      registeredAt = s.lastRegisteredAt ?? Date.now();
      if (monitor) gatewayRoundTrips = monitor.result(pidB);
    }
    return s.agentsRegistered >= agents && s.agentsChecked >= agents && s.pending === 0;
  });
  const ackedAt = Date.now();
  await untilQuiet(sys, timeoutMs);
  const drainedAt = Date.now();
  const commands = await redisCommands(sys.redis);
  const cpu = {
    gatewayB: cpuSeconds(pidB) - cpu0.b,
    reconciler: cpuSeconds(sys.reconciler.pid) - cpu0.reconciler,
    redis: (await redisCpu(sys.redis)) - cpu0.redis,
  };
  const spanS = ((f.lastRegisteredAt ?? 0) - (f.firstRegisteredAt ?? 0)) / 1000;
  const storm = {
    registeredS: (registeredAt - t0) / 1000,
    firstRegisteredS: ((f.firstRegisteredAt ?? t0) - t0) / 1000,
    checkedS: ((f.lastCheckedAt ?? t0) - t0) / 1000,
    ackedS: (ackedAt - t0) / 1000,
    drainedS: (drainedAt - t0) / 1000,
    registrations: f.registrations,
    perSecondB: spanS > 0 ? f.registrations / spanS : 0,
    byGateway: f.byGateway,
    refusedUpgrades: f.refusedUpgrades,
    refusals: f.refusals,
    closes: f.closes,
    closeCodes: f.closeCodes,
    runs: f.runs,
    applies: f.applies,
    results: f.results,
    resent: f.resent,
    lost: f.pending + f.dropped,
    duplicates: f.duplicates,
    doubleApplies: f.doubleApplies,
    redisCommands: commands.total,
    topCommands: commands.top,
    gatewayRoundTrips: gatewayRoundTrips as { total: number; byCommand: Record<string, number> } | null,
    cpu,
  };
  console.log(`storm: ${JSON.stringify(storm)}`);
  return { storm };
}

if (args.child === 'gateway' || args.child === 'reconciler') {
  await runRole(args.child, args.config ?? '', args['data-dir'] ?? tmpdir(), args['gateway-id']);
} else if (args.child === 'sims') {
  await runStormSims({
    url: args.url ?? '',
    token: AGENT_TOKEN,
    count: Number(args.count),
    offset: Number(args.offset ?? 0),
    tasks: Number(args.tasks),
  });
} else {
  await main();
}
