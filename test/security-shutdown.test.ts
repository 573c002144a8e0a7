/**
 * Issue 11, "Agent" and "Shutdown": real `fluke` processes (from source, as the CLI dispatches
 * them), a private redis-server that is killed or frozen, a fake gateway for the agent.
 *
 * Finding 9: the agent accepted ws:// to any host silently, sending its bearer token in clear.
 * Finding 11: `fluke server` hung after SIGTERM while its Redis was gone, and ioredis printed
 * "Unhandled error event" for a connection with no error listener.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import t, { type Test } from 'tap';
import { createRedis } from '../store/redis/client.js';
import { makeGitRepo } from '../testkit/git-repo.js';
import { freePort, startRedis, type TestRedis } from '../testkit/redis.js';
import { serverHcl } from '../testkit/system.js';
import { shell, task } from './helpers/agent-harness.js';
import { startFakeGateway } from './helpers/fake-gateway.js';
import { eventually } from './helpers/gateway.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
type Tap = Test;

interface Proc {
  child: ChildProcess;
  output(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `fluke …` from source, exactly as the CLI dispatches it; killed in teardown if still running. */
function fluke(tt: Tap, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const code = `import('./bin/fluke.ts').then((m) => m.main(${JSON.stringify(args)})).then((c) => { process.exitCode = c; })`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (c, s) => resolve({ code: c, signal: s, at: Date.now() })),
  );
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exit };
}

/** Waits (no fixed sleep) until the output matches; fails with the output so far. */
async function waitForOutput(p: Proc, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const exited = () => p.child.exitCode !== null || p.child.signalCode !== null;
  const state = await eventually(
    async () => (pattern.test(p.output()) ? 'matched' : exited() ? 'exited' : 'waiting'),
    (s) => s !== 'waiting',
    timeoutMs,
  ).catch(() => 'timed out');
  if (state !== 'matched') throw new Error(`${state} before ${pattern}:\n${p.output()}`);
}

const UNHANDLED = /Unhandled error event/g;

/** Waits until the process is gone (or a zombie nobody reaped yet); false after 10 s. */
async function gone(pid: number): Promise<boolean> {
  const isGone = async () => {
    try {
      process.kill(pid, 0);
      return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return true;
    }
  };
  return eventually(isGone, (g) => g, 10_000).then(
    () => true,
    () => false,
  );
}

/** A server-side role on its own Redis and Git repo, started and logging at info. */
async function startRole(
  tt: Tap,
  role: 'server' | 'gateway' | 'reconciler',
  shutdownTimeout: string | null,
): Promise<{ proc: Proc; redis: TestRedis }> {
  const redis = await startRedis();
  tt.teardown(() => redis.stop());
  const repo = await makeGitRepo();
  tt.teardown(() => repo.remove());
  await repo.commit({ 'hosts/a.fluke.hcl': '' });
  const dir = mkdtempSync(join(tmpdir(), 'fluke-sec-shutdown-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let hcl = serverHcl({
    agentsPort: await freePort(),
    httpPort: await freePort(),
    redisUrl: redis.url,
    prefix: redis.prefix,
    repo: repo.dir,
    pollInterval: '2s',
    heartbeat: '1s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore: 'redis',
  }).replace('log { level = "warn" }', 'log { level = "info" }');
  if (shutdownTimeout) hcl = hcl.replace('server {', `server {\n  shutdown_timeout = "${shutdownTimeout}"`);
  const file = join(dir, `${role}.hcl`);
  writeFileSync(file, hcl);
  const proc = fluke(tt, [role, '--config', file, '--data-dir', dir]);
  await waitForOutput(proc, new RegExp(`fluke ${role} started`));
  return { proc, redis };
}

async function redisPid(redis: TestRedis): Promise<number> {
  const info = await redis.client().info('server');
  return Number(/process_id:(\d+)/.exec(info)?.[1]);
}

/** Freeze redis-server (SIGSTOP): connections stay open, nothing answers. Thawed in teardown. */
async function freeze(tt: Tap, redis: TestRedis): Promise<void> {
  const pid = await redisPid(redis);
  process.kill(pid, 'SIGSTOP');
  tt.teardown(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  });
}

/** SIGTERM, then how long the exit took; asserts the bound and the clean stderr. */
async function termAndTime(tt: Tap, proc: Proc, boundMs: number, what: string): Promise<number> {
  const sent = Date.now();
  proc.child.kill('SIGTERM');
  const exit = await Promise.race([
    proc.exit,
    new Promise<null>((r) => setTimeout(() => r(null), boundMs + 30_000)),
  ]);
  tt.ok(exit, `${what}: exited at all\n${proc.output().slice(-2000)}`);
  if (!exit) return Number.POSITIVE_INFINITY;
  const took = exit.at - sent;
  tt.ok(took < boundMs, `${what}: exited ${took} ms after SIGTERM (bound ${boundMs} ms)`);
  tt.equal(exit.signal, null, `${what}: exited by itself, not killed by a signal`);
  tt.not(exit.code, null, `${what}: has an exit code`);
  if (exit.code !== 0) {
    tt.match(
      proc.output(),
      /"pending":\["[^"]+.*shutdown deadline passed: exiting with steps pending/,
      `${what}: a non-zero exit says the deadline passed and what was pending`,
    );
  }
  tt.equal(proc.output().match(UNHANDLED)?.length ?? 0, 0, `${what}: no "Unhandled error event"`);
  return took;
}

t.test('Shutdown hangs without Redis', async (t) => {
  // Headroom for a loaded 2-core machine on top of each bound.
  const HEADROOM_MS = 9_000;

  t.test(
    'every client made by createRedis, and every duplicate of it, has a rate-limited error listener',
    async (t) => {
      const warned: unknown[] = [];
      const logger = { warn: (o: unknown) => warned.push(o), info: () => {} } as unknown as Logger;
      // Nothing listens on this port: every connection attempt fails.
      const client = createRedis(`redis://127.0.0.1:${await freePort()}`, {}, { logger, intervalMs: 60_000 });
      const copy = client.duplicate();
      const copyOfCopy = copy.duplicate({ enableAutoPipelining: true });
      t.teardown(() => {
        for (const c of [client, copy, copyOfCopy]) c.disconnect();
      });
      for (const c of [client, copy, copyOfCopy]) t.equal(c.listenerCount('error'), 1, 'one error listener');
      let errors = 0;
      copyOfCopy.on('error', () => errors++);
      await eventually(
        async () => errors,
        (n) => n >= 3,
        30_000,
      ).catch(() => errors);
      t.ok(errors >= 3, `reconnect attempts failed (${errors})`);
      t.equal(warned.length, 1, 'one warning for the whole outage, across the three clients');
    },
  );

  t.test(
    'server, Redis killed: exits within shutdown_timeout; every connection has a listener',
    async (t) => {
      const { proc, redis } = await startRole(t, 'server', '3s');
      await redis.kill();
      // Redis is down for a while before the signal: every client has tried to reconnect.
      await waitForOutput(proc, /redis connection error/);
      await termAndTime(t, proc, 3_000 + HEADROOM_MS, 'server');
      const warnings = proc.output().match(/redis connection error/g)?.length ?? 0;
      t.ok(warnings <= 3, `connection errors are rate-limited (${warnings} lines)`);
    },
  );

  t.test('server, Redis killed, default shutdown_timeout: exits within 10 s', async (t) => {
    const { proc, redis } = await startRole(t, 'server', null);
    await redis.kill();
    await waitForOutput(proc, /redis connection error/);
    await termAndTime(t, proc, 10_000 + HEADROOM_MS, 'server (default timeout)');
    t.match(proc.output(), /"shutdown_timeout_ms":10000/, 'the default is 10 s');
  });

  t.test('server, Redis frozen (SIGSTOP): exits within shutdown_timeout', async (t) => {
    const { proc, redis } = await startRole(t, 'server', '3s');
    await freeze(t, redis);
    await termAndTime(t, proc, 3_000 + HEADROOM_MS, 'server (frozen redis)');
  });

  t.test('gateway alone, Redis killed: exits within shutdown_timeout', async (t) => {
    const { proc, redis } = await startRole(t, 'gateway', '3s');
    await redis.kill();
    await waitForOutput(proc, /redis connection error/);
    await termAndTime(t, proc, 3_000 + HEADROOM_MS, 'gateway');
  });

  t.test('reconciler alone, Redis killed: exits within shutdown_timeout', async (t) => {
    const { proc, redis } = await startRole(t, 'reconciler', '3s');
    await redis.kill();
    await waitForOutput(proc, /redis connection error/);
    await termAndTime(t, proc, 3_000 + HEADROOM_MS, 'reconciler');
  });

  t.test('reconciler alone, Redis frozen: exits within shutdown_timeout', async (t) => {
    const { proc, redis } = await startRole(t, 'reconciler', '3s');
    await freeze(t, redis);
    await termAndTime(t, proc, 3_000 + HEADROOM_MS, 'reconciler (frozen redis)');
  });

  t.test('a second SIGTERM exits at once', async (t) => {
    // A deadline far away: only the second signal can end it quickly.
    const { proc, redis } = await startRole(t, 'server', '120s');
    await freeze(t, redis);
    proc.child.kill('SIGTERM');
    await waitForOutput(proc, /fluke server stopping/);
    const sent = Date.now();
    proc.child.kill('SIGTERM');
    const exit = await proc.exit;
    t.ok(exit.at - sent < 5_000, `exited ${exit.at - sent} ms after the second SIGTERM`);
    t.equal(exit.code, 143, 'exit code 128 + SIGTERM');
    t.match(proc.output(), /second signal: exiting now/);
  });

  t.test(
    'agent, its server gone, a command ignoring SIGTERM: exits within its shutdown_timeout',
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'fluke-sec-agent-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const gw = await startFakeGateway({ token: 'agent-secret' });
      t.teardown(() => gw.close());
      const file = join(dir, 'agent.hcl');
      writeFileSync(
        file,
        `agent {
  server_url       = "${gw.url}"
  token            = "agent-secret"
  name             = "sec-01"
  shutdown_timeout = "2s"
  log { level = "info" }
}
`,
      );
      const agent = fluke(t, ['agent', '--config', file]);
      await gw.waitFor((m) => m.type === 'register');
      // The command ignores SIGTERM, so the cancel would wait 5 s before SIGKILL: past the deadline.
      const pidFile = join(dir, 'pid');
      const stubborn = task('stubborn', [
        shell(
          'hang',
          'false',
          `echo $$ > ${pidFile}; trap '' TERM; echo started; while true; do sleep 0.2; done`,
        ),
      ]);
      gw.send({ type: 'run', instruction_id: 'sec-1', revision: 'r', trigger: 'manual', tasks: [stubborn] });
      await gw.waitFor((m) => m.type === 'output' && m.line === 'started');
      const commandPid = Number(readFileSync(pidFile, 'utf8').trim());
      await gw.kill(); // the server is gone
      const sent = Date.now();
      agent.child.kill('SIGTERM');
      const exit = await agent.exit;
      t.ok(exit.at - sent < 2_000 + HEADROOM_MS, `exited ${exit.at - sent} ms after SIGTERM (bound 2 s)`);
      t.equal(exit.code, 1, 'non-zero: the deadline passed with the drain pending');
      t.match(agent.output(), /"pending":\["agent drain.*shutdown deadline passed/);
      t.ok(await gone(commandPid), 'the stubborn command was killed');
    },
  );

  t.test('agent whose server never answers: exits 0 at once', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fluke-sec-agent-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'agent.hcl');
    writeFileSync(
      file,
      `agent {\n  server_url = "ws://127.0.0.1:${await freePort()}"\n  token = "x"\n  name = "sec-02"\n  log { level = "info" }\n}\n`,
    );
    const agent = fluke(t, ['agent', '--config', file]);
    await waitForOutput(agent, /agent starting/);
    const sent = Date.now();
    agent.child.kill('SIGTERM');
    const exit = await agent.exit;
    t.equal(exit.code, 0);
    t.ok(exit.at - sent < 10_000 + HEADROOM_MS, `exited ${exit.at - sent} ms after SIGTERM`);
  });
});

t.test('The agent accepts ws:// to any host silently, sending its bearer token in clear', async (t) => {
  const agentConfig = (dir: string, url: string, extra = '') => {
    const file = join(dir, 'agent.hcl');
    writeFileSync(
      file,
      `agent {\n  name       = "sec-03"\n  server_url = "${url}"\n  token      = "agent-secret"\n${extra}  log { level = "info" }\n}\n`,
    );
    return file;
  };

  t.test(
    'ws:// to a host that is not loopback is refused at startup, saying why and what to do',
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'fluke-sec-ws-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      // 0.0.0.0 is not a loopback address, yet a connection to it would reach this gateway:
      // proof that nothing is attempted.
      const gw = await startFakeGateway({ token: 'agent-secret' });
      t.teardown(() => gw.close());
      for (const url of [`ws://0.0.0.0:${gw.port}`, 'ws://example.invalid:7070']) {
        const file = agentConfig(dir, url);
        const agent = fluke(t, ['agent', '--config', file]);
        const exit = await agent.exit;
        t.equal(exit.code, 1, `${url}: exit 1`);
        t.match(agent.output(), `${file}:3: agent.server_url:`, `${url}: names the file and line`);
        t.match(agent.output(), /token would travel in clear/, `${url}: says why`);
        t.match(agent.output(), /wss:\/\/.*allow_insecure = true/, `${url}: says what to do`);
        t.notMatch(agent.output(), /agent starting/, `${url}: never started`);
      }
      t.equal(gw.attempts.length, 0, 'no connection was attempted');
    },
  );

  t.test('loopback ws:// still starts, without a warning', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fluke-sec-ws-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const gw = await startFakeGateway({ token: 'agent-secret' });
    t.teardown(() => gw.close());
    const agent = fluke(t, ['agent', '--config', agentConfig(dir, gw.url)]);
    await gw.waitFor((m) => m.type === 'register');
    t.notMatch(agent.output(), /allow_insecure/);
    agent.child.kill('SIGTERM');
    t.equal((await agent.exit).code, 0);
  });

  t.test('allow_insecure = true: starts, warns once, and connects', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fluke-sec-ws-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const gw = await startFakeGateway({ token: 'agent-secret' });
    t.teardown(() => gw.close());
    const file = agentConfig(dir, `ws://0.0.0.0:${gw.port}`, '  allow_insecure = true\n');
    const agent = fluke(t, ['agent', '--config', file]);
    await gw.waitFor((m) => m.type === 'register');
    t.equal(gw.authorizations[0], 'Bearer agent-secret', 'it connected, token and all');
    await waitForOutput(agent, /agent starting/);
    t.equal(agent.output().match(/allow_insecure: the token and all traffic travel in clear/g)?.length, 1);
    agent.child.kill('SIGTERM');
    t.equal((await agent.exit).code, 0);
  });
});
