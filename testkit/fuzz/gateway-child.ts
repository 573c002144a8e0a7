/**
 * `fluke gateway` as a real child process (sources through tsx) against a private Redis, so a
 * crash is a process that exits and an uncaught exception is a line on its output.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveIdentityKey } from '../../shared/identity/agent-credential.js';
import { freePort, startRedis, type TestRedis } from '../redis.js';
import { root, serverHcl, waitFor } from '../system.js';

export interface GatewayChild {
  redis: TestRedis;
  url: string;
  httpPort: number;
  pid: number;
  child: ChildProcess;
  alive(): boolean;
  exitCode(): number | string | null;
  /** Resident set size of the gateway process, in bytes (0 once it is gone). */
  rss(): number;
  /** Lines of its output that name an uncaught exception or an unhandled rejection, or are fatal. */
  crashLines(): string[];
  /** Lines logged at error level or above (not crashes by themselves, reported). */
  errorLines(): string[];
  stop(): Promise<void>;
}

const CRASH = /uncaught|unhandled|"level":60|FATAL|Segmentation fault|Aborted|core dumped/i;
const ERROR = /"level":50/;

/** The child's `identity.key`: the fuzzer issues real instruction ids for its positive control. */
export const FUZZ_IDENTITY_SECRET = 'fuzz-identity-key-0123456789abcdef0123456789';
export const FUZZ_IDENTITY_KEY = deriveIdentityKey(FUZZ_IDENTITY_SECRET);

export async function startGatewayChild(opts: { heartbeat?: string } = {}): Promise<GatewayChild> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-fuzz-'));
  const agentsPort = await freePort();
  const httpPort = await freePort();
  const config = join(dir, 'gateway.hcl');
  const hcl = serverHcl({
    agentsPort,
    httpPort,
    redisUrl: redis.url,
    prefix: redis.prefix,
    repo: join(dir, 'no-repo'),
    pollInterval: '1h',
    heartbeat: opts.heartbeat ?? '2s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore: 'redis',
    extra: `  identity { key = "${FUZZ_IDENTITY_SECRET}" }`,
  }).replace('level = "warn"', 'level = "error"');
  writeFileSync(config, hcl);
  // `fluke gateway` as the CLI dispatches it, from source (no build needed).
  const main = `import('./bin/fluke.ts').then((m) => m.main(${JSON.stringify(['gateway', '--config', config])})).then((c) => { process.exitCode = c; })`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', main], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const crashes: string[] = [];
  let head = '';
  const errors: string[] = [];
  let tail = '';
  const scan = (d: Buffer) => {
    if (head.length < 4000) head += d.toString().slice(0, 4000);
    const text = tail + d.toString();
    const lines = text.split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      if (CRASH.test(line)) crashes.push(line.slice(0, 2000));
      else if (ERROR.test(line)) errors.push(line.slice(0, 2000));
    }
  };
  child.stdout?.on('data', scan);
  child.stderr?.on('data', scan);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (alive()) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Served, or exited: either ends the wait (an exit is reported below).
    await waitFor(
      'the gateway child to serve /healthz',
      async () =>
        alive() ? await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((res) => res.status) : 'exited',
      (status) => status === 200 || status === 'exited',
      90_000,
    );
    if (!alive()) throw new Error(`gateway child exited at start: ${head}`);
  } catch (err) {
    await stop();
    throw new Error(`${String(err)}; gateway output: ${head}`);
  }
  return {
    redis,
    url: `ws://127.0.0.1:${agentsPort}/agent`,
    httpPort,
    pid: child.pid ?? 0,
    child,
    alive,
    exitCode: () => child.exitCode ?? child.signalCode,
    rss: () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
        return kb ? Number(kb) * 1024 : 0;
      } catch {
        return 0;
      }
    },
    crashLines: () => [...crashes, ...(CRASH.test(tail) ? [tail] : [])],
    errorLines: () => [...errors],
    stop,
  };
}
