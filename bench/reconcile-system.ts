/**
 * The system bench/reconcile.ts measures: a private redis-server (or a Redis Cluster), a Git repo
 * of N tasks, `reconcilers` reconcilers and `gateways` gateways (child processes wired by
 * startServices), and simulator processes holding the agents' sockets, each agent connected
 * straight to one gateway (round robin). `withSystem` starts it, hands it to the measurement and
 * tears it all down afterwards, on failure and on Ctrl-C too.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keys } from '../shared/keys.js';
import { closeQueues, createQueues, type Queues } from '../store/queues/queues.js';
import type { RedisClient } from '../store/redis/client.js';
import { makeGitRepo, type TestRepo } from '../testkit/git-repo.js';
import { freePort } from '../testkit/redis.js';
import { serverHcl } from '../testkit/system.js';
import { type BenchRedis, startBenchRedis } from './bench-redis.js';
import { ask, children, sleep, spawnChild, stop, waitFor } from './reconcile-ipc.js';
import { openFileLimit } from './reconcile-machine.js';
import {
  type CpuSnapshot,
  type Ctx,
  cpuDelta,
  cpuSnapshot,
  type RestMemory,
  redisUsedMemory,
  restMemory,
} from './reconcile-probes.js';

export interface SystemOptions {
  agents: number;
  tasks: number;
  simProcs: number;
  timeoutMs: number;
  heartbeat: string;
  /** Extra node flags for the gateway and reconciler (`--role-flags`). */
  roleFlags: string;
  /** `--cpu-prof`: whole-run CPU profiles of the gateway and reconciler into `profDir`. */
  cpuProf: boolean;
  profDir: string;
  /** `--prof-phase`: the one phase to profile into `profDir`. */
  profPhase: string | undefined;
  gateways: number;
  reconcilers: number;
  /** `--redis-cluster`: a 3-master Redis Cluster with replicas instead of one redis-server. */
  redisCluster: boolean;
  /** `--source-ips N`: bind the agents' sockets to 127.0.0.1 … 127.0.0.N (0: the OS picks). */
  sourceIps: number;
}

export interface System {
  ctx: Ctx;
  repo: TestRepo;
  redisServer: BenchRedis;
  /** uWebSockets.js in the gateway: native or the fallback. */
  implementation: string;
  connectMs: number;
  /** Control-plane CPU over the registrations. */
  connectCpu: CpuSnapshot;
  /** Gateways' RSS at rest and Redis used_memory, before any agent connected. */
  before: { gateways: RestMemory[]; redisUsed: number };
}

/** `tasks` tasks, one shell step each, matching every simulated agent; `variant` changes the first. */
export function manifest(tasks: number, variant: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < tasks; i++) {
    const name = `bench_${String(i).padStart(2, '0')}`;
    files[`tasks/${name}.fluke.hcl`] = `task "${name}" {
  selector { match_labels = { role = "bench" } }
  shell "step" {
    check   = "true"
    command = "true # ${i === 0 ? variant : 'v1'}"
  }
}
`;
  }
  return files;
}

export async function withSystem(
  opts: SystemOptions,
  body: (system: System) => Promise<void>,
): Promise<void> {
  const redisServer = await startBenchRedis(opts.redisCluster);
  const repo = await makeGitRepo();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-bench-'));
  let queues: Queues | null = null;
  let client: RedisClient | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = () => {
    cleaning ??= cleanupOnce();
    return cleaning;
  };
  const cleanupOnce = async () => {
    await Promise.allSettled([...children].map(stop));
    if (queues) await closeQueues(queues).catch(() => {});
    client?.disconnect();
    await redisServer.stop().catch((err: unknown) => console.error('redis stop failed', err));
    await repo.remove().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    await repo.commit(manifest(opts.tasks, 'v1'));
    const configFor = () => writeConfig(opts, dir, redisServer, repo);
    const keys = new Keys(redisServer.prefix);
    client = redisServer.client();
    queues = createQueues(client, keys);
    const roles = await startRoles(opts, configFor, dir);
    const c = client;
    for (
      const until = Date.now() + 60_000;
      !(await c.hget(keys.sourceStatus(), 'status'))?.includes('"revision":"');
    ) {
      if (Date.now() > until) throw new Error('the reconciler never compiled the first commit');
      await sleep(200);
    }
    const redisNodes = redisServer.nodes();
    const before = {
      gateways: await restMemory(roles.gateways),
      redisUsed: await redisUsedMemory(redisNodes),
    };
    const cpuBefore = await cpuSnapshot({ ...roles, sims: [], redisNodes });
    const { sims, connectMs } = await connectSims(opts, roles.urls);
    const connectCpu = cpuDelta(cpuBefore, await cpuSnapshot({ ...roles, sims, redisNodes }));
    const ctx: Ctx = {
      reconcilers: roles.reconcilers,
      gateways: roles.gateways,
      redis: c,
      redisNodes,
      keys,
      queues,
      sims,
      agents: opts.agents,
      tasks: opts.tasks,
      timeoutMs: opts.timeoutMs,
      idleRate: 0,
      profile: opts.profPhase ? { phase: opts.profPhase, dir: opts.profDir } : null,
    };
    await body({
      ctx,
      repo,
      redisServer,
      implementation: roles.implementation,
      connectMs,
      connectCpu,
      before,
    });
  } finally {
    await cleanup();
  }
}

async function writeConfig(
  opts: SystemOptions,
  dir: string,
  redis: BenchRedis,
  repo: TestRepo,
): Promise<string> {
  const agentsPort = await freePort();
  const httpPort = await freePort();
  const configFile = join(dir, `server-${agentsPort}.hcl`);
  writeFileSync(
    configFile,
    serverHcl({
      agentsPort,
      httpPort,
      redisUrl: 'BENCH-REDIS',
      prefix: redis.prefix,
      repo: repo.dir,
      // Long: the periodic drift tick (every 60 s, agents whose slot falls in that window) would
      // otherwise mix its own drift checks into the cycles; at 720h that is ~0.2 of 10,000 per tick.
      pollInterval: '720h',
      heartbeat: opts.heartbeat,
      policy: 'remediate',
      alertWebhook: null,
      eventStore: 'redis',
    }).replace(/url\s*=\s*"BENCH-REDIS"/, redis.hclLine),
  );
  return configFile;
}

interface Roles {
  reconcilers: ChildProcess[];
  gateways: ChildProcess[];
  urls: string[];
  implementation: string;
}

/** The reconcilers, then the gateways, each ready to serve; each its own config (its own ports). */
async function startRoles(
  opts: SystemOptions,
  configFor: () => Promise<string>,
  dir: string,
): Promise<Roles> {
  const flags = (role: string, extra: string[]) => [
    ...extra,
    ...(opts.roleFlags ? opts.roleFlags.split(/\s+/) : []),
    ...(opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(opts.profDir, role)] : []),
  ];
  const start = async (role: 'reconciler' | 'gateway', i: number) => {
    const child = spawnChild(
      [
        '--child',
        role,
        '--config',
        await configFor(),
        '--data-dir',
        join(dir, `${role}-${i}`),
        '--instance',
        String(i),
      ],
      // --expose-gc: the gateways' RSS is read at rest, after forced collections (role-stats.ts).
      flags(`${role}-${i}`, role === 'gateway' ? ['--expose-gc'] : []),
    );
    return { child, ready: await waitFor(child, 'ready', 60_000) };
  };
  const reconcilers = [];
  for (let i = 0; i < opts.reconcilers; i++) reconcilers.push((await start('reconciler', i)).child);
  const gateways = [];
  for (let i = 0; i < opts.gateways; i++) gateways.push(await start('gateway', i));
  return {
    reconcilers,
    gateways: gateways.map((g) => g.child),
    urls: gateways.map((g) => `ws://127.0.0.1:${g.ready.port}/agent`),
    implementation: String(gateways[0]?.ready.implementation),
  };
}

/** The simulator processes, their agents connected and registered. */
async function connectSims(
  opts: SystemOptions,
  urls: string[],
): Promise<{ sims: ChildProcess[]; connectMs: number }> {
  const per = Math.ceil(opts.agents / opts.simProcs);
  const limit = openFileLimit();
  // Each simulated agent is one socket (one fd) in its simulator process.
  if (per + 200 > limit.soft)
    throw new Error(
      `${per} agents per simulator process needs more than the open-file limit ${limit.soft}: raise --sims (or ulimit -n)`,
    );
  const sims: ChildProcess[] = [];
  for (let i = 0; i < opts.simProcs; i++) {
    const count = Math.max(0, Math.min(per, opts.agents - i * per));
    const sim = spawnChild(
      [
        '--child',
        'sims',
        '--url',
        urls.join(','),
        '--source-ips',
        String(opts.sourceIps),
        '--count',
        String(count),
        '--offset',
        String(i * per),
        '--proc',
        String(i),
      ],
      // They stand for remote hosts: a young generation big enough that the results they keep
      // until acked (a second or two) do not get promoted and collected again as old objects.
      ['--max-semi-space-size=64'],
    );
    sims.push(sim);
  }
  await Promise.all(sims.map((s) => waitFor(s, 'loaded', 60_000)));
  const connectStart = Date.now();
  const connected = await Promise.all(
    sims.map((s) => ask(s, { type: 'connect' }, 'connected', opts.timeoutMs)),
  );
  const connectMs = Date.now() - connectStart;
  const nConnected = connected.reduce((s, m) => s + Number(m.agents), 0);
  console.log(`connected + registered ${nConnected} agents in ${(connectMs / 1000).toFixed(1)} s`);
  return { sims, connectMs };
}
