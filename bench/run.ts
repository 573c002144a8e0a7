/**
 * `npm run bench`: lists the benchmarks, then runs one. Without arguments it runs the cheap one
 * (the manifest compile, one run: under a minute, no Redis) so the script always terminates on its
 * own; the others hold thousands of sockets for minutes and are run by name.
 *
 *   npm run bench                          # list, then bench/compile.ts --runs 1
 *   npm run bench -- <name> [args…]        # bench/<name>.ts with its own arguments
 *   npm run bench -- reconcile --agents 200 --tasks 5 --sims 1
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES: Record<string, string> = {
  compile: 'manifest compile: 200 files, 1,000 tasks, cold and one-file-changed [--runs N]',
  gateway:
    'uWS vs ws vs the gateway holding N sockets: RSS, registrations/s, heartbeat cost [--agents N --clients N --heartbeat-ms --window-ms --write]',
  reconcile:
    'full reconcile cycles over N simulated agents: cycle time, Redis commands and BullMQ jobs per agent [--agents N --tasks N --sims N --drift F --write …]',
  storm:
    'kill -9 the gateway holding N agents behind haproxy: time until all re-registered and connect-checked, results lost, double applies [--agents N --tasks N --monitor --haproxy-cfg FILE --write]',
  fuzz: 'wire fuzzer against a live gateway and manifest fuzzer over the compiler: outcome classes, Redis writes by refused frames [--frames N --manifests N --seed N --concurrency N --write]',
  recovery:
    'kill -9 a gateway / a reconciler mid-cycle, FLUSHALL, Redis restart, Cluster and Sentinel failover under N agents: time to registered and re-checked, results lost, double applies [--agents N --tasks N --scenarios a,b --write]',
  'results-handler':
    "the reconciler's results handler alone: CPU per agent per round [--agents N --tasks N --rounds N --cpu-prof DIR]",
};
const DEFAULT = ['compile', '--runs', '1'];

const [name, ...rest] = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEFAULT;
console.log('Benchmarks (results in bench/RESULTS.md):');
for (const [bench, what] of Object.entries(BENCHES)) console.log(`  ${bench.padEnd(16)} ${what}`);
if (name === undefined || !(name in BENCHES)) {
  console.error(`unknown benchmark ${JSON.stringify(name)}`);
  process.exit(2);
}
const script = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
console.log(`\n$ node --import tsx bench/${name}.ts ${rest.join(' ')}`.trimEnd());
const run = spawnSync(process.execPath, ['--import', 'tsx', script, ...rest], { stdio: 'inherit' });
process.exit(run.status ?? 1);
