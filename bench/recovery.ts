/**
 * Recovery benchmark: break a running Fluke holding N simulated agents × T tasks in each way the
 * design says it survives, and time the way back. For every scenario: fault → every agent
 * registered again, fault → every agent checked again, results lost, double applies
 * (recovery-scenarios.ts). The parts: recovery-system.ts (two gateways, two reconcilers, the
 * simulators), recovery-backend.ts (single Redis, Cluster, Sentinel), recovery-agent.ts and
 * recovery-sims.ts (agents that reconnect as the real one does), recovery-measure.ts and
 * recovery-probes.ts (the clock and the accounting), recovery-report.ts (the table).
 *
 *   node --import tsx bench/recovery.ts [--agents 10000] [--tasks 20] [--sims 3] [--drift 0.1]
 *     [--heartbeat 10s] [--timeout-s 300] [--scenarios gateway-kill,reconciler-kill,flushall,
 *     redis-restart,cluster-failover,sentinel-failover] [--row-json storm-row.json] [--write]
 *   --write: replace the `## Recovery` section of bench/RESULTS.md; rows of scenarios not run this
 *   time are kept, a `--row-json` row (bench/storm.ts's kill -9 behind HAProxy) is added by its id.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startServices } from '../bin/services.js';
import { loadServerConfig } from '../shared/config/load.js';
import { AGENT_TOKEN } from '../testkit/system.js';
import type { BackendKind } from './recovery-backend.js';
import {
  existingRows,
  loadNow,
  type RecoveryRow,
  readResults,
  renderRow,
  renderSection,
  rowFromJson,
} from './recovery-report.js';
import { SCENARIOS } from './recovery-scenarios.js';
import { runRecoverySims } from './recovery-sims.js';
import { withRecoverySystem } from './recovery-system.js';
import { writeResultsSection } from './results-file.js';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    tasks: { type: 'string', default: '20' },
    sims: { type: 'string', default: '3' },
    drift: { type: 'string', default: '0.1' },
    heartbeat: { type: 'string', default: '10s' },
    'timeout-s': { type: 'string', default: '300' },
    scenarios: { type: 'string', default: SCENARIOS.map((s) => s.id).join(',') },
    'row-json': { type: 'string', multiple: true },
    write: { type: 'boolean', default: false },
    // children
    child: { type: 'string' },
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    'gateway-id': { type: 'string' },
    urls: { type: 'string' },
    count: { type: 'string' },
    offset: { type: 'string' },
    proc: { type: 'string' },
  },
});

/** A gateway or reconciler through the wiring `fluke gateway|reconciler` uses, under its own id. */
async function runRole(
  role: 'gateway' | 'reconciler',
  configFile: string,
  dataDir: string,
  id: string,
): Promise<void> {
  const config = await loadServerConfig(configFile);
  const logger = pino({ level: 'warn', base: { role: id } });
  const services = await startServices(config, role, { dataDir, logger, gatewayId: id });
  const stop = async () => {
    await services.close().catch(() => {});
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('disconnect', () => void stop());
  process.send?.({ type: 'ready', port: services.ports.agents ?? 0 });
}

async function main(): Promise<void> {
  const wanted = new Set((args.scenarios ?? '').split(',').filter(Boolean));
  for (const id of wanted)
    if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario ${JSON.stringify(id)}`);
  const opts = {
    agents: Number(args.agents),
    tasks: Number(args.tasks),
    simProcs: Math.max(1, Number(args.sims)),
    heartbeat: args.heartbeat ?? '10s',
    timeoutMs: Number(args['timeout-s']) * 1000,
  };
  const drift = Number(args.drift);
  const load = loadNow();
  const command = `node --import tsx bench/recovery.ts --agents ${opts.agents} --tasks ${opts.tasks} --sims ${opts.simProcs} --drift ${drift} --heartbeat ${opts.heartbeat} --scenarios ${[...wanted].join(',')}`;
  console.log(`${opts.agents} agents × ${opts.tasks} tasks; load average ${load}`);
  const rows: RecoveryRow[] = [];
  const skipped: string[] = []; // scenarios not run (none today; kept for the section writer)
  for (const backend of ['single', 'cluster', 'sentinel'] as BackendKind[]) {
    const todo = SCENARIOS.filter((s) => s.backend === backend && wanted.has(s.id));
    if (todo.length === 0) continue;
    await withRecoverySystem({ ...opts, backend }, async (sys) => {
      for (const s of todo) {
        console.log(`— ${s.id}: ${s.title}`);
        const row = await s.run(sys, drift);
        console.log(`  ${JSON.stringify(row)}`);
        rows.push({ ...row, command, load, date: new Date().toISOString().slice(0, 10) });
      }
    });
  }
  for (const file of args['row-json'] ?? []) rows.push(rowFromJson(readFileSync(file, 'utf8'), file));
  const merged = existingRows(readResults());
  for (const r of rows) merged.set(r.id, renderRow(r));
  const section = renderSection(merged, skipped);
  console.log(`\n${section}`);
  if (args.write) writeResultsSection('Recovery', section);
}

if (args.child === 'gateway' || args.child === 'reconciler') {
  await runRole(
    args.child,
    args.config ?? '',
    args['data-dir'] ?? tmpdir(),
    args['gateway-id'] ?? `bench-${args.child}`,
  );
} else if (args.child === 'sims') {
  await runRecoverySims({
    urls: (args.urls ?? '').split(','),
    token: AGENT_TOKEN,
    count: Number(args.count),
    offset: Number(args.offset ?? 0),
    proc: Number(args.proc ?? 0),
  });
} else {
  await main();
  process.exit(0);
}
