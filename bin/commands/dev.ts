/**
 * `fluke dev` (what `npm start` runs): a private Redis unless $REDIS_URL is set, `examples/` as a
 * local Git repository, the all-in-one server and one local agent, and the URL to open. Prints
 * events as they happen so a newcomer sees the agent connect, drift found and remediated.
 * Ctrl-C stops everything it started.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseServerConfig } from '../../shared/config/load.js';
import type { FlukeEvent } from '../../shared/events.js';
import { packageRoot } from '../../shared/paths.js';
import { coerceError } from '../../shared/types.js';
import { runCommand, stdStreams } from '../cli/cli-context.js';
import { readCommandLine } from '../cli/command-line.js';
import { spawnRedisServer, waitForRedis } from '../redis-server.js';
import { startServices } from '../services.js';
import { DEV_SPEC, type DevOptions, devOptions } from './dev-options.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

async function startRedis(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  // Its own process group: Ctrl-C reaches only `fluke dev`, which stops things in order.
  const proc = spawnRedisServer(port, dir, { detached: true });
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitForRedis(url);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return { url, proc };
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=fluke dev', '-c', 'user.email=dev@fluke.invalid', ...args], {
    cwd,
    stdio: 'pipe',
  }).toString();

/** Copies examples/ into a Git repo under the data dir and commits any change. */
function prepareRepo(repo: string): string {
  const examples = join(packageRoot, 'examples');
  if (!existsSync(join(repo, '.git'))) {
    mkdirSync(repo, { recursive: true });
    git(repo, 'init', '-q', '-b', 'main');
  }
  for (const entry of readdirSync(examples))
    cpSync(join(examples, entry), join(repo, entry), { recursive: true });
  git(repo, 'add', '-A');
  if (git(repo, 'status', '--porcelain').trim() !== '')
    git(repo, 'commit', '-q', '-m', 'Demo manifests from examples/');
  return git(repo, 'rev-parse', 'HEAD').trim();
}

function secret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = randomBytes(18).toString('base64url');
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return value;
}

function describe(e: FlukeEvent): string {
  const where = `${e.agent} ${e.task}`;
  switch (e.kind) {
    case 'task_run': {
      const steps = e.steps.map((s) => `${s.step}=${s.outcome}`).join(' ');
      return `${e.at.slice(11, 19)} ${where}: ${e.outcome} (${e.trigger}, ${e.mode}) ${steps} [execution ${e.execution_id}]`;
    }
    case 'timeout':
      return `${e.at.slice(11, 19)} ${where}: timeout after ${Math.round(e.waited_ms / 1000)}s`;
    case 'undeliverable':
      return `${e.at.slice(11, 19)} ${where}: undeliverable: ${e.reason}`;
    case 'alert_failed':
      return `${e.at.slice(11, 19)} ${where}: alert ${e.alert_event} failed: ${e.error}`;
  }
}

export function run(argv: string[]): Promise<number> {
  return runCommand(stdStreams, 'dev', async () => {
    const line = readCommandLine(argv, DEV_SPEC, stdStreams.stdout);
    return line ? runDemo(devOptions(line)) : 0;
  });
}

async function runDemo(options: DevOptions): Promise<number> {
  const { dataDir } = options;
  mkdirSync(dataDir, { recursive: true });
  const stopping: (() => Promise<void> | void)[] = [];
  const children: ChildProcess[] = [];
  const stopAll = async () => {
    for (const s of stopping.reverse()) {
      await Promise.race([
        Promise.resolve(s()).catch(() => {}),
        new Promise((r) => setTimeout(r, 10_000).unref()),
      ]);
    }
  };
  // Never leave the private Redis or the agent behind, whatever happens to this process.
  process.once('exit', () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });
  try {
    let redisUrl = process.env.REDIS_URL;
    if (!redisUrl) {
      if (!hasBinary('redis-server')) {
        process.stderr.write(
          'fluke dev: no redis-server found. Install it (Debian/Ubuntu: sudo apt-get install redis-server;\n' +
            'macOS: brew install redis) or point REDIS_URL at a Redis 7 with maxmemory-policy noeviction.\n',
        );
        return 1;
      }
      const redis = await startRedis(join(dataDir, 'redis'));
      redisUrl = redis.url;
      children.push(redis.proc);
      stopping.push(() => {
        redis.proc.kill('SIGTERM');
      });
    }
    const revision = prepareRepo(join(dataDir, 'repo'));
    // The demo has an alert_only task: a local receiver prints its alerts.
    const alerts = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const a = JSON.parse(Buffer.concat(chunks).toString()) as {
            event: string;
            agent: { name: string };
            task: string;
            remediation_status: string;
            drifted_steps: string[];
          };
          out(
            `  ALERT ${a.event}: ${a.agent.name} ${a.task} (${a.remediation_status}; steps ${a.drifted_steps.join(', ')})`,
          );
        } catch {
          out('  ALERT (unreadable body)');
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((res) => alerts.listen(0, '127.0.0.1', () => res()));
    stopping.push(() => new Promise<void>((res) => alerts.close(() => res())));
    const alertAddress = alerts.address();
    const alertPort = typeof alertAddress === 'object' && alertAddress ? alertAddress.port : 0;
    const agentToken = secret(join(dataDir, 'agent-token'));
    const apiToken = secret(join(dataDir, 'api-token'));
    let { httpPort, agentsPort } = options;
    if (!(await portFree(httpPort))) httpPort = await freePort();
    if (!(await portFree(agentsPort))) agentsPort = await freePort();
    const prefix = process.env.REDIS_URL ? `fluke-dev-${randomBytes(3).toString('hex')}` : 'fluke';
    const serverHcl = `server {
  listen_agents      = "127.0.0.1:${agentsPort}"
  listen_http        = "127.0.0.1:${httpPort}"
  agent_tokens       = ["${agentToken}"]
  api_tokens         = ["${apiToken}"]
  heartbeat_interval = "5s"
  redis { url = "${redisUrl}"  prefix = "${prefix}" }
  git {
    url           = "${join(dataDir, 'repo')}"
    poll_interval = "${options.pollInterval}"
  }
  tls { enabled = false }
  drift {
    policy        = "remediate"
    alert_webhook = "http://127.0.0.1:${alertPort}/alerts"
  }
  log { level = "warn"  format = "pretty" }
}
`;
    const agentHcl = `agent {
  server_url = "ws://127.0.0.1:${agentsPort}"
  token      = "${agentToken}"
  name       = "demo-agent"
  labels     = { role = "demo", env = "dev" }
  execution { command_timeout = "1m" }
  log { level = "warn"  format = "pretty" }
}
`;
    writeFileSync(join(dataDir, 'server.hcl'), serverHcl);
    writeFileSync(join(dataDir, 'agent.hcl'), agentHcl);
    const config = await parseServerConfig(join(dataDir, 'server.hcl'), serverHcl, {});
    const services = await startServices(config, 'server', { dataDir });
    stopping.push(() => services.close());

    const agent = spawn(
      process.execPath,
      [join(packageRoot, 'bin', 'fluke'), 'agent', '--config', join(dataDir, 'agent.hcl')],
      { stdio: ['ignore', 'inherit', 'inherit'], detached: true },
    );
    children.push(agent);
    stopping.push(
      () =>
        new Promise<void>((res) => {
          if (agent.exitCode !== null) return res();
          agent.once('exit', () => res());
          agent.kill('SIGTERM');
        }),
    );

    const base = `http://127.0.0.1:${httpPort}`;
    out('');
    out('Fluke demo is running.');
    out(
      `  web UI        ${base}/   (paste the API token below into its token box to use the Reconcile buttons)`,
    );
    out(`  Bull Board    ${base}/queues   metrics: ${base}/metrics`);
    out(`  HTTP API      ${base}/api/v1/status   (docs/api.md)`);
    out(
      `  demo repo     ${join(dataDir, 'repo')} at ${revision.slice(0, 12)} (commit to it; polled every ${options.pollInterval})`,
    );
    out(`  agent         demo-agent {role=demo, env=dev} on ws://127.0.0.1:${agentsPort}`);
    out(`  API token     ${apiToken}`);
    out(`  CLI           export FLUKE_SERVER=${base} FLUKE_API_TOKEN=${apiToken}`);
    out('                npx fluke get agents; npx fluke get drift; npx fluke reconcile all   (docs/cli.md)');
    out(
      `  curl          curl -X POST -H 'Authorization: Bearer ${apiToken}' -H 'Content-Type: application/json' -d '{"target":"all"}' ${base}/api/v1/reconcile`,
    );
    out(
      '  drift         the demo tasks write under /tmp/fluke-demo: delete greeting.txt and watch it come back;',
    );
    out(
      '                motd is alert_only: it stays drifted (one ALERT per episode) until the reconcile above applies it',
    );
    out('Events (Ctrl-C to stop):');

    const seen = new Set<string>();
    const timer = setInterval(async () => {
      try {
        const res = await fetch(`${base}/api/v1/events?limit=50`);
        const page = (await res.json()) as { events: FlukeEvent[] };
        for (const e of page.events.reverse()) {
          if (seen.has(e.id)) continue;
          seen.add(e.id);
          out(`  ${describe(e)}`);
        }
      } catch {
        // The server is stopping or busy; the next tick tries again.
      }
    }, 1000);
    stopping.push(() => clearInterval(timer));

    await new Promise<void>((res) => {
      process.once('SIGINT', res);
      process.once('SIGTERM', res);
      agent.once('exit', (code) => {
        out(`agent exited with ${code}`);
        res();
      });
    });
    out('stopping…');
    await stopAll();
    return 0;
  } catch (err) {
    process.stderr.write(`fluke dev: ${coerceError(err).message}\n`);
    await stopAll();
    return 1;
  }
}
