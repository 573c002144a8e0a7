/**
 * The system bench/recovery.ts breaks and times: a Redis backend (recovery-backend.ts), a Git repo of
 * N tasks, two gateways and two reconcilers (child processes wired by startServices, each killable
 * with SIGKILL and startable again) and simulator processes whose agents reconnect like the real
 * agent (recovery-sims.ts). `withRecoverySystem` starts it and always tears it down.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { Keys } from '../shared/keys.js';
import { closeQueues, createQueues, type Queues } from '../store/queues/queues.js';
import { makeGitRepo, type TestRepo } from '../testkit/git-repo.js';
import { freePort } from '../testkit/redis.js';
import { AGENT_TOKEN, API_TOKEN } from '../testkit/system.js';
import { ask, children, forkBench, type Msg, sleep, stop, waitFor } from './reconcile-ipc.js';
import { manifest } from './reconcile-system.js';
import { type Backend, type BackendKind, startBackend } from './recovery-backend.js';
import { waitSettled } from './recovery-probes.js';

const SCRIPT = fileURLToPath(new URL('./recovery.ts', import.meta.url));
export function spawnRecoveryChild(args: string[], execArgv: string[] = []): ChildProcess {
  return forkBench(SCRIPT, args, execArgv);
}

/** kill -9, and wait until it is gone. */
export async function killNow(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

export interface RecoveryOptions {
  backend: BackendKind;
  agents: number;
  tasks: number;
  simProcs: number;
  heartbeat: string;
  timeoutMs: number;
}

export interface Role {
  id: string;
  config: string;
  process: ChildProcess | null;
  /** `ws://…/agent` (gateways). */
  url: string;
}

export interface RecoverySystem {
  opts: RecoveryOptions;
  backend: Backend;
  repo: TestRepo;
  redis: Redis;
  keys: Keys;
  queues: Queues;
  gateways: Role[];
  reconcilers: Role[];
  sims: ChildProcess[];
  agentNames: string[];
  connectMs: number;
  /** Start (again) a role whose process was killed or never started. */
  startRole(role: Role, kind: 'gateway' | 'reconciler'): Promise<void>;
}

function serverConfig(backend: Backend, repo: TestRepo, heartbeat: string, ports: [number, number]): string {
  return `server {
  listen_agents      = "127.0.0.1:${ports[0]}"
  listen_http        = "127.0.0.1:${ports[1]}"
  agent_tokens       = ["${AGENT_TOKEN}"]
  api_tokens         = ["${API_TOKEN}"]
  heartbeat_interval = "${heartbeat}"
  redis {
    ${backend.redisBlock}
  }
  git {
    url           = "${repo.dir}"
    poll_interval = "720h"
  }
  tls { enabled = false }
  drift { policy = "remediate" }
  event_store { backend = "redis" }
  log { level = "warn" }
}
`;
}

export async function withRecoverySystem(
  opts: RecoveryOptions,
  body: (system: RecoverySystem) => Promise<void>,
): Promise<void> {
  const backend = await startBackend(opts.backend);
  const repo = await makeGitRepo();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-recovery-'));
  const redis = backend.client() as Redis;
  const keys = new Keys(backend.prefix);
  const queues = createQueues(redis, keys);
  const cleanup = async () => {
    await Promise.allSettled([...children].map(stop));
    await closeQueues(queues).catch(() => {});
    redis.disconnect();
    await backend.stop().catch((err: unknown) => console.error('redis stop failed', err));
    await repo.remove().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  const onInt = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onInt);
  try {
    await repo.commit(manifest(opts.tasks, 'v1'));
    const role = async (id: string): Promise<Role> => {
      const ports: [number, number] = [await freePort(), await freePort()];
      const config = join(dir, `${id}.hcl`);
      writeFileSync(config, serverConfig(backend, repo, opts.heartbeat, ports));
      return { id, config, process: null, url: `ws://127.0.0.1:${ports[0]}/agent` };
    };
    const startRole = async (r: Role, kind: 'gateway' | 'reconciler') => {
      const p = spawnRecoveryChild([
        '--child',
        kind,
        '--config',
        r.config,
        '--data-dir',
        join(dir, r.id),
        '--gateway-id',
        r.id,
      ]);
      r.process = p;
      await waitFor(p, 'ready', 60_000);
    };
    const reconcilers = [await role('reconciler-a'), await role('reconciler-b')];
    for (const r of reconcilers) await startRole(r, 'reconciler');
    for (
      const until = Date.now() + 60_000;
      !(await redis.hget(keys.sourceStatus(), 'status'))?.includes('"revision":"');
    ) {
      if (Date.now() > until) throw new Error('the reconcilers never compiled the first commit');
      await sleep(200);
    }
    const gateways = [await role('gateway-a'), await role('gateway-b')];
    for (const g of gateways) await startRole(g, 'gateway');
    const { sims, connectMs } = await connectSims(
      opts,
      gateways.map((g) => g.url),
    );
    const agentNames = Array.from({ length: opts.agents }, (_, i) => `sim-${String(i).padStart(6, '0')}`);
    const system: RecoverySystem = {
      opts,
      backend,
      repo,
      redis,
      keys,
      queues,
      gateways,
      reconcilers,
      sims,
      agentNames,
      connectMs,
      startRole,
    };
    await warmUp(system);
    await body(system);
  } finally {
    process.off('SIGINT', onInt);
    await cleanup();
  }
}

/** Every registration enqueued a connect reconcile: the first faults start from a quiet system. */
async function warmUp(sys: RecoverySystem): Promise<void> {
  const started = Date.now();
  const { settled, unacked, queued } = await waitSettled(sys, started + sys.opts.timeoutMs, true);
  if (!settled)
    throw new Error(`warm-up: never quiet (${unacked} results unacknowledged, ${queued} jobs queued)`);
  console.log(
    `connect-triggered reconciles done and quiet ${((Date.now() - started) / 1000).toFixed(1)} s after the last registration`,
  );
}

async function connectSims(
  opts: RecoveryOptions,
  urls: string[],
): Promise<{ sims: ChildProcess[]; connectMs: number }> {
  const per = Math.ceil(opts.agents / opts.simProcs);
  const sims: ChildProcess[] = [];
  for (let i = 0; i < opts.simProcs; i++) {
    const count = Math.max(0, Math.min(per, opts.agents - i * per));
    const args = ['--child', 'sims', '--urls', urls.join(','), '--count', String(count)];
    sims.push(
      spawnRecoveryChild(
        [...args, '--offset', String(i * per), '--proc', String(i)],
        ['--max-semi-space-size=64'],
      ),
    );
  }
  await Promise.all(sims.map((s) => waitFor(s, 'loaded', 60_000)));
  const started = Date.now();
  const replies: Msg[] = await Promise.all(
    sims.map((s) => ask(s, { type: 'connect' }, 'connected', opts.timeoutMs)),
  );
  const connectMs = Date.now() - started;
  const n = replies.reduce((s, m) => s + Number(m.agents), 0);
  console.log(
    `connected + registered ${n} agents over ${urls.length} gateways in ${(connectMs / 1000).toFixed(1)} s`,
  );
  return { sims, connectMs };
}
