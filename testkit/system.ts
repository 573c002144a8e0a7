/**
 * A whole Fluke for integration tests: a private Redis, a real Git repo of manifests, the
 * all-in-one server in-process (or gateways/reconcilers as real processes) and real agent
 * processes running real commands in temp dirs. Spawned processes run the built CLI (`bin/fluke`
 * → dist/), which `npm test` builds first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { type Services, startServices } from '../bin/services.js';
import { parseServerConfig } from '../shared/config/load.js';
import type { ServerConfig } from '../shared/config/types.js';
import { makeGitRepo, type TestRepo } from './git-repo.js';
import { freePort, startRedis, type TestRedis } from './redis.js';
import type { TestRedisCluster } from './redis-cluster.js';

export const root = dirname(dirname(fileURLToPath(import.meta.url)));
export const AGENT_TOKEN = 'agent-token-for-tests-0123456789';
export const API_TOKEN = 'api-token-for-tests-0123456789';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface SystemOptions {
  files: Record<string, string>;
  pollInterval?: string;
  heartbeat?: string;
  policy?: string;
  alertWebhook?: string | null;
  eventStore?: 'redis' | 'memory';
  /** Start the all-in-one server in this process (default true). */
  inProcess?: boolean;
  /** HCL added inside `server { }` (e.g. an `agent_token "<id>" { }` block). */
  serverExtra?: string;
  /** The in-process server's logger (default silent), e.g. to read what it logs. */
  logger?: pino.Logger;
  /** Run on this Redis Cluster (`redis { cluster_nodes }`); `System.redis` then stays idle. */
  cluster?: TestRedisCluster;
  /**
   * Run on this Redis instead of a private one (not stopped by the system), with `hcl` added
   * inside `redis { }` (e.g. sentinels and master_name: testkit/redis-sentinel.ts sentinelRedis).
   */
  redisConfig?: { server: TestRedis; hcl: string };
}

export interface AgentProcess {
  name: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface System {
  redis: TestRedis;
  repo: TestRepo;
  dir: string;
  configFile: string;
  config: ServerConfig;
  agentsPort: number;
  httpPort: number;
  services: Services | null;
  url(path: string): string;
  get<T = unknown>(path: string): Promise<T>;
  post(path: string, body: unknown, token?: string | null): Promise<{ status: number; json: unknown }>;
  startAgent(
    name: string,
    labels: Record<string, string>,
    /**
     * `commandTimeout`: the agent's `execution.command_timeout` (default "30s"); `serverUrl`: where
     * it connects (default this system's agents port on 127.0.0.1), e.g. a balancer.
     */
    opts?: { agentsPort?: number; commandTimeout?: string; serverUrl?: string },
  ): Promise<AgentProcess>;
  /**
   * `fluke gateway|reconciler|server` as a real process with this system's config; `host`: the
   * address its listeners bind (default 127.0.0.1), e.g. one a balancer points at.
   */
  spawnRole(
    role: 'gateway' | 'reconciler' | 'server',
    overrides?: { agentsPort?: number; httpPort?: number; host?: string },
    extraArgs?: string[],
  ): ChildProcessHandle;
}

export interface ChildProcessHandle {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnFluke(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcessHandle {
  const child = spawn(process.execPath, [join(root, 'bin', 'fluke'), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

export function serverHcl(o: {
  agentsPort: number;
  httpPort: number;
  /** The address both listeners bind (default 127.0.0.1). */
  host?: string;
  redisUrl: string;
  /** Set: `cluster_nodes` instead of `url`. */
  clusterNodes?: readonly string[];
  prefix: string;
  repo: string;
  pollInterval: string;
  heartbeat: string;
  policy: string;
  alertWebhook: string | null;
  eventStore: string;
  extra?: string;
  redisExtra?: string;
}): string {
  return `server {
  listen_agents      = "${o.host ?? '127.0.0.1'}:${o.agentsPort}"
  listen_http        = "${o.host ?? '127.0.0.1'}:${o.httpPort}"
  agent_tokens       = ["${AGENT_TOKEN}"]
  api_tokens         = ["${API_TOKEN}"]
  heartbeat_interval = "${o.heartbeat}"
  redis {
    ${o.clusterNodes ? `cluster_nodes = ${JSON.stringify(o.clusterNodes)}` : `url = "${o.redisUrl}"`}
    prefix = "${o.prefix}"
${o.redisExtra ?? ''}
  }
  git {
    url           = "${o.repo}"
    poll_interval = "${o.pollInterval}"
  }
  tls { enabled = false }
  drift {
    policy = "${o.policy}"
${o.alertWebhook ? `    alert_webhook = "${o.alertWebhook}"` : ''}
  }
  event_store { backend = "${o.eventStore}" }
  log { level = "warn" }
${o.extra ?? ''}
}
`;
}

export async function startSystem(t: Teardown, options: SystemOptions): Promise<System> {
  const redis = options.redisConfig?.server ?? (await startRedis());
  if (!options.redisConfig) t.teardown(() => redis.stop());
  const repo = await makeGitRepo();
  t.teardown(() => repo.remove());
  await repo.commit(options.files);
  const dir = mkdtempSync(join(tmpdir(), 'fluke-sys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const agentsPort = await freePort();
  const httpPort = await freePort();
  const hclFor = (ports: { agentsPort: number; httpPort: number; host?: string }) =>
    serverHcl({
      ...ports,
      redisUrl: redis.url,
      ...(options.cluster ? { clusterNodes: options.cluster.nodes } : {}),
      prefix: options.cluster?.prefix ?? redis.prefix,
      repo: repo.dir,
      pollInterval: options.pollInterval ?? '2s',
      heartbeat: options.heartbeat ?? '1s',
      policy: options.policy ?? 'remediate',
      alertWebhook: options.alertWebhook ?? null,
      eventStore: options.eventStore ?? 'redis',
      extra: options.serverExtra ?? '',
      redisExtra: options.redisConfig?.hcl ?? '',
    });
  const configFile = join(dir, 'server.hcl');
  const source = hclFor({ agentsPort, httpPort });
  writeFileSync(configFile, source);
  const config = await parseServerConfig(configFile, source, {});
  let services: Services | null = null;
  if (options.inProcess !== false) {
    services = await startServices(config, 'server', {
      dataDir: dir,
      logger: options.logger ?? pino({ level: 'silent' }),
    });
    const s = services;
    t.teardown(() => s.close());
  }
  const base = `http://127.0.0.1:${httpPort}`;
  let roleCount = 0;
  const system: System = {
    redis,
    repo,
    dir,
    configFile,
    config,
    agentsPort,
    httpPort,
    services,
    url: (path) => `${base}${path}`,
    async get<T>(path: string): Promise<T> {
      const res = await fetch(`${base}${path}`);
      return (await res.json()) as T;
    },
    async post(path, body, token = API_TOKEN) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: res.status, json: await res.json() };
    },
    async startAgent(name, labels, opts = {}) {
      const file = join(dir, `agent-${name}.hcl`);
      const labelText = Object.entries(labels)
        .map(([k, v]) => `${k} = "${v}"`)
        .join(', ');
      writeFileSync(
        file,
        `agent {
  server_url = "${opts.serverUrl ?? `ws://127.0.0.1:${opts.agentsPort ?? agentsPort}`}"
  token      = "${AGENT_TOKEN}"
  name       = "${name}"
  labels     = { ${labelText} }
  execution { command_timeout = "${opts.commandTimeout ?? '30s'}" }
  log { level = "warn" }
}
`,
      );
      const handle = spawnFluke(['agent', '--config', file]);
      t.teardown(() => handle.stop('SIGKILL'));
      return { name, ...handle };
    },
    spawnRole(role, overrides = {}, extraArgs = []) {
      const file = join(dir, `${role}-${roleCount++}.hcl`);
      writeFileSync(
        file,
        hclFor({
          agentsPort: overrides.agentsPort ?? agentsPort,
          httpPort: overrides.httpPort ?? httpPort,
          ...(overrides.host ? { host: overrides.host } : {}),
        }),
      );
      const handle = spawnFluke([
        role,
        '--config',
        file,
        '--data-dir',
        join(dir, `${role}-${roleCount}`),
        ...extraArgs,
      ]);
      t.teardown(() => handle.stop('SIGKILL'));
      return handle;
    },
  };
  return system;
}

/** A temp dir standing in for a host's filesystem; removed after the test. */
export function sandbox(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'fluke-host-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Poll until `probe` returns something `accept` likes; for conditions with no event to await. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  accept: (v: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      last = await probe();
      if (accept(last)) return last;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
