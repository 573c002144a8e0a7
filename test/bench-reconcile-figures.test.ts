/**
 * The pure parts of bench/reconcile.ts's cross-machine figures: control-plane CPU per agent,
 * steal and idle shares from /proc/stat readings, the section a run writes, the client source
 * addresses on 127.0.0.0/8, and a results section replaced by its whole heading line only.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cpuShares, cpuTicks, openFileLimit, processCpuSeconds } from '../bench/reconcile-machine.js';
import { controlMsPerAgent } from '../bench/reconcile-probes.js';
import { cpuCell, reportHeading } from '../bench/reconcile-report.js';
import { sourceAddress } from '../bench/reconcile-sims.js';
import { writeResultsSection } from '../bench/results-file.js';

t.test(
  'control-plane CPU per agent counts reconcilers, gateways and Redis, not the simulators',
  async (t) => {
    const cpu = { reconciler: 4.6, gateway: 2.0, redis: 1.8, sims: 9.9 };
    t.equal(controlMsPerAgent(cpu, 10_000).toFixed(2), '0.84');
    t.match(cpuCell(cpu, 10_000), /8\.4 CPU-s = \*\*0\.84 ms\/agent\*\* \(0\.46 \+ 0\.20 \+ 0\.18\)/);
  },
);

t.test('steal and idle shares between two /proc/stat readings', async (t) => {
  const a = { total: 1000, idle: 400, steal: 10 };
  t.same(cpuShares(a, { total: 2000, idle: 600, steal: 60 }), { stealPct: 5, idlePct: 20 });
  t.same(cpuShares(a, a), { stealPct: 0, idlePct: 0 }, 'no time passed: no division by zero');
  const now = cpuTicks();
  t.ok(now.total > 0 && now.idle <= now.total, 'this machine has a /proc/stat');
  t.ok(processCpuSeconds(process.pid) > 0, 'this process has used CPU');
  t.equal(processCpuSeconds(undefined), 0);
  t.ok(openFileLimit().soft > 0);
});

t.test('a scaled-out or cluster run writes a section of its own', async (t) => {
  t.equal(reportHeading({ gateways: 1, reconcilers: 1, redisCluster: false }), 'Reconcile cycle');
  t.equal(reportHeading({ gateways: 3, reconcilers: 2, redisCluster: false }), 'Reconcile cycle, scaled out');
  t.equal(reportHeading({ gateways: 1, reconcilers: 2, redisCluster: false }), 'Reconcile cycle, scaled out');
  t.equal(
    reportHeading({ gateways: 3, reconcilers: 2, redisCluster: true }),
    'Reconcile cycle, Redis Cluster',
  );
});

t.test('client source addresses walk 127.0.0.0/8, never .0 or .255', async (t) => {
  t.equal(sourceAddress(0), '127.0.0.1');
  t.equal(sourceAddress(253), '127.0.0.254');
  t.equal(sourceAddress(254), '127.0.1.1');
  t.equal(sourceAddress(600), '127.0.2.93');
});

t.test('writing a section replaces that heading only, not a longer one sharing its start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluke-results-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'RESULTS.md');
  writeFileSync(
    file,
    '# R\n\n## Reconcile cycle, scaled out\n\nscaled\n\n## Reconcile cycle\n\nold\n\n## Fuzzers\n\nfz\n',
  );
  writeResultsSection('Reconcile cycle', '## Reconcile cycle\n\nnew\n', file);
  t.equal(
    readFileSync(file, 'utf8'),
    '# R\n\n## Reconcile cycle, scaled out\n\nscaled\n\n## Reconcile cycle\n\nnew\n## Fuzzers\n\nfz\n',
  );
  writeResultsSection('Reconcile cycle, Redis Cluster', '## Reconcile cycle, Redis Cluster\n\nc\n', file);
  t.match(readFileSync(file, 'utf8'), /## Fuzzers\n\nfz\n\n## Reconcile cycle, Redis Cluster\n\nc\n$/);
});
