/**
 * `fluke dev` (what `npm start` runs): a private Redis unless $REDIS_URL is set, `examples/` as a
 * local Git repository, the all-in-one server and one local agent, and the URL to open. Prints
 * events as they happen so a newcomer sees the agent connect, drift found and remediated.
 * Ctrl-C stops everything it started, within the server's shutdown_timeout (a second Ctrl-C: at once).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseServerConfig } from '../../shared/config/load.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS } from '../../shared/config/types.js';
import { coerceError } from '../../shared/errors.js';
import { packageRoot } from '../../shared/paths.js';
import { runCommand, stdStreams } from '../cli/cli-context.js';
import { readCommandLine } from '../cli/command-line.js';
import { spawnRedisServer, waitForRedis } from '../redis-server.js';
import { startServices } from '../services.js';
import { boundedShutdown, firstStopSignal, type ShutdownLogger } from '../shutdown.js';
import { devConfigFiles, followEvents, out, printWelcome, startAlertReceiver } from './dev-console.js';
import { DEV_SPEC, type DevOptions, devOptions } from './dev-options.js';

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

/** One thing to stop; `what` names it when the shutdown deadline passes with it pending. */
type Stopper = (() => Promise<void> | void) & { what?: string };

const named = (what: string, stop: () => Promise<void> | void): Stopper => Object.assign(stop, { what });

const devLog: ShutdownLogger = {
  warn: (fields, msg) => process.stderr.write(`fluke dev: ${msg} ${JSON.stringify(fields)}\n`),
  error: (fields, msg) => process.stderr.write(`fluke dev: ${msg} ${JSON.stringify(fields)}\n`),
};

/** A private redis-server under the data dir; null (after saying why) when there is none to run. */
async function privateRedis(
  dataDir: string,
  children: ChildProcess[],
  stopping: Stopper[],
): Promise<string | null> {
  if (!hasBinary('redis-server')) {
    process.stderr.write(
      'fluke dev: no redis-server found. Install it (Debian/Ubuntu: sudo apt-get install redis-server;\n' +
        'macOS: brew install redis) or point REDIS_URL at a Redis 7 with maxmemory-policy noeviction.\n',
    );
    return null;
  }
  const redis = await startRedis(join(dataDir, 'redis'));
  children.push(redis.proc);
  stopping.push(
    named('redis-server', () => {
      redis.proc.kill('SIGTERM');
    }),
  );
  return redis.url;
}

function spawnAgent(configFile: string, children: ChildProcess[], stopping: Stopper[]): ChildProcess {
  const agent = spawn(
    process.execPath,
    [join(packageRoot, 'bin', 'fluke'), 'agent', '--config', configFile],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    },
  );
  children.push(agent);
  stopping.push(
    named(
      'agent',
      () =>
        new Promise<void>((res) => {
          if (agent.exitCode !== null) return res();
          agent.once('exit', () => res());
          agent.kill('SIGTERM');
        }),
    ),
  );
  return agent;
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
  const stopping: Stopper[] = [];
  const children: ChildProcess[] = [];
  let shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS;
  // Every part under one deadline; past it the children are killed and dev exits 1.
  const stopAll = () =>
    boundedShutdown({
      logger: devLog,
      timeoutMs: shutdownTimeoutMs,
      graceful: async (tracker) => {
        for (const s of stopping.reverse()) await tracker.step(s.what ?? 'stop', s, devLog);
      },
      force: () => {
        for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      },
    });
  // Never leave the private Redis or the agent behind, whatever happens to this process.
  process.once('exit', () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });
  try {
    const redisUrl = process.env.REDIS_URL || (await privateRedis(dataDir, children, stopping));
    if (redisUrl === null) return 1;
    const revision = prepareRepo(join(dataDir, 'repo'));
    // The demo has an alert_only task: a local receiver prints its alerts.
    const alertPort = await startAlertReceiver(stopping);
    const agentToken = secret(join(dataDir, 'agent-token'));
    const apiToken = secret(join(dataDir, 'api-token'));
    let { httpPort, agentsPort } = options;
    if (!(await portFree(httpPort))) httpPort = await freePort();
    if (!(await portFree(agentsPort))) agentsPort = await freePort();
    const prefix = process.env.REDIS_URL ? `fluke-dev-${randomBytes(3).toString('hex')}` : 'fluke';
    const { serverHcl, agentHcl } = devConfigFiles({
      agentsPort,
      httpPort,
      agentToken,
      apiToken,
      redisUrl,
      prefix,
      repo: join(dataDir, 'repo'),
      pollInterval: options.pollInterval,
      alertPort,
    });
    writeFileSync(join(dataDir, 'server.hcl'), serverHcl);
    writeFileSync(join(dataDir, 'agent.hcl'), agentHcl);
    const config = await parseServerConfig(join(dataDir, 'server.hcl'), serverHcl, {});
    shutdownTimeoutMs = config.shutdown_timeout_ms;
    const services = await startServices(config, 'server', { dataDir });
    stopping.push(named('server', () => services.close()));

    const agent = spawnAgent(join(dataDir, 'agent.hcl'), children, stopping);

    const base = `http://127.0.0.1:${httpPort}`;
    printWelcome({
      base,
      repo: join(dataDir, 'repo'),
      revision,
      pollInterval: options.pollInterval,
      agentsPort,
      apiToken,
    });

    const timer = followEvents(base);
    stopping.push(named('event follower', () => clearInterval(timer)));

    await Promise.race([
      firstStopSignal(),
      new Promise<void>((res) => {
        agent.once('exit', (code) => {
          out(`agent exited with ${code}`);
          res();
        });
      }),
    ]);
    out('stopping…');
    return await stopAll();
  } catch (err) {
    process.stderr.write(`fluke dev: ${coerceError(err).message}\n`);
    await stopAll();
    return 1;
  }
}
