/**
 * The system bench/storm.ts measures: a private redis-server, a Git repo of N tasks, one
 * reconciler, gateways A and B (child processes wired by startServices as `fluke gateway` /
 * `fluke reconciler`, each on its own loopback address at the shipped config's ports 7070/7071),
 * one or more Debian haproxy processes running infra/haproxy/haproxy.cfg (only addresses
 * substituted) in front of both, and simulator processes holding the agents' sockets.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { Keys } from '../shared/keys.js';
import { closeQueues, createQueues, type Queues } from '../store/queues/queues.js';
import { makeGitRepo, type TestRepo } from '../testkit/git-repo.js';
import {
  GATEWAY_AGENT_PORT,
  GATEWAY_HTTP_PORT,
  randomLoopbackHost,
  SHIPPED_HAPROXY_CFG,
  startHaproxy,
  type TestHaproxy,
} from '../testkit/haproxy.js';
import { freePort, startRedis, type TestRedis } from '../testkit/redis.js';
import { serverHcl } from '../testkit/system.js';
import { children, forkBench, sleep, stop, waitFor } from './reconcile-ipc.js';
import { manifest } from './reconcile-system.js';

const SCRIPT = fileURLToPath(new URL('./storm.ts', import.meta.url));
/** haproxy needs about 2 fds per proxied connection; this box allows 20,000 per process. */
export const AGENTS_PER_HAPROXY = 5000;
/** The most `maxconn` one haproxy may declare under a 20,000 fd limit (it refuses to start above). */
const FD_SAFE_MAXCONN = 9000;

export function spawnStormChild(childArgs: string[], execArgv: string[] = []): ChildProcess {
  return forkBench(SCRIPT, childArgs, execArgv);
}

export interface StormOptions {
  agents: number;
  tasks: number;
  simProcs: number;
  heartbeat: string;
  cpuProf: boolean;
  profDir: string;
  /** `--haproxy-cfg`: another haproxy.cfg to compare with the shipped one (same substitutions). */
  haproxyCfg: string | null;
}

export interface StormSystem {
  redisServer: TestRedis;
  redis: Redis;
  keys: Keys;
  queues: Queues;
  repo: TestRepo;
  reconciler: ChildProcess;
  /** Gateway A (started first, holds every agent) and how to start B. */
  gatewayA: ChildProcess;
  startGatewayB(): Promise<ChildProcess>;
  lbs: TestHaproxy[];
  /** Whether the shipped maxconn had to be lowered for this box's fd limit. */
  maxconnLowered: string | null;
  sims: ChildProcess[];
  simsUrl: string[];
}

/** The gateway's config: the bench's server.hcl, listening where haproxy.cfg expects gateway N. */
function gatewayHcl(base: string, host: string | null): string {
  const bind = (port: number) => (host ? `${host}:${port}` : null);
  return base
    .replace(/listen_agents\s*=\s*"[^"]*"/, (m) =>
      bind(GATEWAY_AGENT_PORT) ? `listen_agents = "${bind(GATEWAY_AGENT_PORT)}"` : m,
    )
    .replace(/listen_http\s*=\s*"[^"]*"/, (m) =>
      bind(GATEWAY_HTTP_PORT) ? `listen_http = "${bind(GATEWAY_HTTP_PORT)}"` : m,
    );
}

/** The shipped haproxy.cfg, its global maxconn lowered only if this box's fd limit refuses it. */
function haproxyCfg(dir: string, source: string): { file: string; lowered: string | null } {
  const text = readFileSync(source, 'utf8');
  const m = /^(\s*maxconn\s+)(\d+)\s*$/m.exec(text);
  if (!m || Number(m[2]) <= FD_SAFE_MAXCONN) return { file: source, lowered: null };
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, text.replace(m[0], `${m[1]}${FD_SAFE_MAXCONN}`));
  return { file, lowered: `${m[2]} → ${FD_SAFE_MAXCONN}` };
}

async function untilOutput(lb: TestHaproxy, pattern: RegExp, what: string, timeoutMs: number): Promise<void> {
  for (const until = Date.now() + timeoutMs; !pattern.test(lb.output()); ) {
    if (Date.now() > until) throw new Error(`haproxy: ${what} not seen within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export async function withStormSystem(
  opts: StormOptions,
  body: (system: StormSystem) => Promise<void>,
): Promise<void> {
  const redisServer = await startRedis();
  const repo = await makeGitRepo();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-storm-'));
  const lbs: TestHaproxy[] = [];
  let queues: Queues | null = null;
  let client: Redis | null = null;
  const cleanup = async () => {
    await Promise.allSettled([...children].map(stop));
    await Promise.allSettled(lbs.map((lb) => lb.stop()));
    if (queues) await closeQueues(queues).catch(() => {});
    client?.disconnect();
    await redisServer.stop().catch(() => {});
    await repo.remove().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    await repo.commit(manifest(opts.tasks, 'v1'));
    const hosts = [randomLoopbackHost(), randomLoopbackHost()];
    if (hosts[0] === hosts[1]) hosts[1] = hosts[1]?.replace(/\.\d+$/, '.1') ?? '';
    const base = serverHcl({
      agentsPort: await freePort(),
      httpPort: await freePort(),
      redisUrl: redisServer.url,
      prefix: redisServer.prefix,
      repo: repo.dir,
      pollInterval: '720h',
      heartbeat: opts.heartbeat,
      policy: 'remediate',
      alertWebhook: null,
      eventStore: 'redis',
      // Every agent reaches the gateways from haproxy's address: the per-address registration
      // limit (1,000/s, burst 10,000) would count the whole fleet as one host (see the report).
      extra: `  agent_limits {
    address_registration_rate  = 1000000
    address_registration_burst = 1000000
  }`,
    });
    const cfg = (name: string, host: string | null) => {
      const file = join(dir, `${name}.hcl`);
      writeFileSync(file, gatewayHcl(base, host));
      return file;
    };
    const keys = new Keys(redisServer.prefix);
    client = redisServer.client();
    queues = createQueues(client, keys);
    const prof = (role: string) =>
      opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(opts.profDir, role)] : [];
    const role = (name: string, kind: 'gateway' | 'reconciler', host: string | null) =>
      spawnStormChild(
        ['--child', kind, '--config', cfg(name, host), '--data-dir', join(dir, name), '--gateway-id', name],
        prof(name),
      );
    const reconciler = role('reconciler', 'reconciler', null);
    await waitFor(reconciler, 'ready', 60_000);
    for (
      const until = Date.now() + 60_000;
      !(await client.hget(keys.sourceStatus(), 'status'))?.includes('"revision":"');
    ) {
      if (Date.now() > until) throw new Error('the reconciler never compiled the first commit');
      await sleep(200);
    }
    const gatewayA = role('gateway-a', 'gateway', hosts[0] ?? '');
    await waitFor(gatewayA, 'ready', 60_000);
    const haproxy = haproxyCfg(dir, opts.haproxyCfg ?? SHIPPED_HAPROXY_CFG);
    const nLbs = Math.max(1, Math.ceil(opts.agents / AGENTS_PER_HAPROXY));
    for (let i = 0; i < nLbs; i++) lbs.push(await startHaproxy({ gatewayHosts: hosts, cfg: haproxy.file }));
    // B is not started yet: every agent must land on A, so wait until each haproxy marks it DOWN.
    await Promise.all(
      lbs.map((lb) => untilOutput(lb, /gateways_agents\/gateway-2 is DOWN/, 'gateway-2 DOWN', 30_000)),
    );
    const startGatewayB = async () => {
      const b = role('gateway-b', 'gateway', hosts[1] ?? '');
      await waitFor(b, 'ready', 60_000);
      await Promise.all(
        lbs.map((lb) => untilOutput(lb, /gateways_agents\/gateway-2 is UP/, 'gateway-2 UP', 30_000)),
      );
      return b;
    };
    const simsUrl: string[] = [];
    const sims: ChildProcess[] = [];
    const per = Math.ceil(opts.agents / opts.simProcs);
    for (let i = 0; i < opts.simProcs; i++) {
      const count = Math.max(0, Math.min(per, opts.agents - i * per));
      // Sim process i goes through balancer i mod n: each haproxy fronts its share of the fleet.
      const url = lbs[i % lbs.length]?.agentsUrl ?? '';
      simsUrl.push(url);
      sims.push(
        spawnStormChild(
          [
            '--child',
            'sims',
            '--url',
            url,
            '--count',
            String(count),
            '--offset',
            String(i * per),
            '--tasks',
            String(opts.tasks),
          ],
          ['--max-semi-space-size=64'],
        ),
      );
    }
    await Promise.all(sims.map((s) => waitFor(s, 'loaded', 60_000)));
    await body({
      redisServer,
      redis: client,
      keys,
      queues,
      repo,
      reconciler,
      gatewayA,
      startGatewayB,
      lbs,
      maxconnLowered: haproxy.lowered,
      sims,
      simsUrl,
    });
  } finally {
    await cleanup();
  }
}
