/**
 * Logging hygiene on real processes: a gateway, a reconciler and an agent (built `bin/fluke`) on a
 * password-protected Redis, all at debug level, driven through registration, reconciles, the
 * console (Bull Board, /metrics, the API) and the git webhook, with right and wrong credentials.
 * No secret may appear anywhere in their output. Also: JSON lines by default with the session
 * and job context fields, and `format = "pretty"` for humans.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import t from 'tap';
import WebSocket from 'ws';
import { createLogger } from '../shared/logger.js';
import { makeGitRepo } from '../testkit/git-repo.js';
import { freePort } from '../testkit/redis.js';
import { type ChildProcessHandle, sandbox, spawnFluke, waitFor } from '../testkit/system.js';

const SECRETS = {
  FLUKE_AGENT_TOKEN: 'agent-secret-7f3a9c2e41d8b6',
  FLUKE_API_TOKEN: 'api-secret-5b8e1d4c7a9f03',
  FLUKE_WEBHOOK_SECRET: 'hook-secret-c2a7e9f1b4d605',
  REDIS_PASSWORD: 'redis-secret-9d1f6b3a8e2c47',
};

/** Token-as-user schemes put the whole credential in basic_auth_user. */
const GIT_TOKEN_USER = 'git-user-secret-4e7b2d9a1c';

t.test('the logger redacts secret fields', async (t) => {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const logger = createLogger({ level: 'debug', format: 'json' }, 'fluke-test', sink);
  logger.debug(
    {
      token: SECRETS.FLUKE_AGENT_TOKEN,
      headers: { authorization: `Bearer ${SECRETS.FLUKE_API_TOKEN}` },
      git: { basic_auth_user: GIT_TOKEN_USER, basic_auth_password: SECRETS.REDIS_PASSWORD },
      config: { api_tokens: [SECRETS.FLUKE_API_TOKEN], agent_tokens: [SECRETS.FLUKE_AGENT_TOKEN] },
    },
    'with secrets',
  );
  const line = JSON.parse(out) as Record<string, unknown>;
  t.match(line, { level: 20, name: 'fluke-test', msg: 'with secrets', token: '[redacted]' });
  for (const secret of Object.values(SECRETS)) t.notMatch(out, secret);
  t.notMatch(out, GIT_TOKEN_USER, 'a token-as-user git credential');
});

async function startPasswordRedis(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fluke-redis-pw-'));
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir].concat([
      '--maxmemory-policy',
      'noeviction',
      '--requirepass',
      SECRETS.REDIS_PASSWORD,
    ]),
    { stdio: 'ignore' },
  );
  t.teardown(async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(
    'redis with a password',
    async () => {
      const c = new Redis({
        port,
        password: SECRETS.REDIS_PASSWORD,
        lazyConnect: true,
        retryStrategy: () => null,
      });
      c.on('error', () => {});
      try {
        await c.connect();
        return await c.ping();
      } finally {
        c.disconnect();
      }
    },
    (r) => r === 'PONG',
    10_000,
  );
  return port;
}

const serverHcl = (o: {
  agentsPort: number;
  httpPort: number;
  redisPort: number;
  repo: string;
  prefix: string;
}) => `
server {
  listen_agents      = "127.0.0.1:${o.agentsPort}"
  listen_http        = "127.0.0.1:${o.httpPort}"
  agent_tokens       = ["$FLUKE_AGENT_TOKEN"]
  api_tokens         = ["$FLUKE_API_TOKEN"]
  api_read_access    = "token"
  heartbeat_interval = "1s"
  redis {
    url    = "redis://:$REDIS_PASSWORD@127.0.0.1:${o.redisPort}"
    prefix = "${o.prefix}"
  }
  git {
    url            = "${o.repo}"
    poll_interval  = "2s"
    webhook_secret = "$FLUKE_WEBHOOK_SECRET"
  }
  tls { enabled = false }
  log { level = "debug" }
}
`;

const agentHcl = (agentsPort: number, name: string, format: 'json' | 'pretty') => `
agent {
  server_url = "ws://127.0.0.1:${agentsPort}"
  token      = "$FLUKE_AGENT_TOKEN"
  name       = "${name}"
  labels     = { role = "web" }
  log {
    level  = "debug"
    format = "${format}"
  }
}
`;

interface LogLine {
  level: number;
  time: number;
  name: string;
  msg: string;
  [field: string]: unknown;
}

/** Every stdout/stderr line of a process that is a JSON log line (others are returned apart). */
function logLines(output: string): { json: LogLine[]; other: string[] } {
  const json: LogLine[] = [];
  const other: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.trim()) continue;
    try {
      json.push(JSON.parse(line) as LogLine);
    } catch {
      other.push(line);
    }
  }
  return { json, other };
}

t.test('no secret reaches the logs of real processes, at debug level', async (t) => {
  const redisPort = await startPasswordRedis(t);
  const repo = await makeGitRepo();
  t.teardown(() => repo.remove());
  const host = sandbox(t);
  await repo.commit({
    'web.fluke.hcl': `task "site" {
  selector { match_labels = { role = "web" } }
  shell "index" {
    check   = "test -f ${host}/index"
    command = "echo hello > ${host}/index"
  }
}
`,
  });
  const dir = mkdtempSync(join(tmpdir(), 'fluke-logging-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const agentsPort = await freePort();
  const httpPort = await freePort();
  const prefix = `fluke-log-${process.pid}`;
  writeFileSync(
    join(dir, 'server.hcl'),
    serverHcl({ agentsPort, httpPort, redisPort, repo: repo.dir, prefix }),
  );
  writeFileSync(join(dir, 'agent.hcl'), agentHcl(agentsPort, 'web-01', 'json'));
  const env = { ...SECRETS };
  const processes: Record<string, ChildProcessHandle> = {};
  const start = (name: string, args: string[]) => {
    const handle = spawnFluke(args, env);
    t.teardown(() => handle.stop('SIGKILL'));
    processes[name] = handle;
    return handle;
  };
  const config = join(dir, 'server.hcl');
  start('gateway', ['gateway', '--config', config]);
  start('reconciler', ['reconciler', '--config', config, '--data-dir', join(dir, 'data')]);
  const base = `http://127.0.0.1:${httpPort}`;
  const api = { authorization: `Bearer ${SECRETS.FLUKE_API_TOKEN}` };
  await waitFor(
    'the gateway',
    () => fetch(`${base}/healthz`).then((r) => r.status),
    (s) => s === 200,
  );
  start('agent', ['agent', '--config', join(dir, 'agent.hcl')]);
  await waitFor('the first apply', async () => existsSync(join(host, 'index')), Boolean, 60_000);

  // Everything that handles a secret, with the right one and with wrong ones that contain it.
  const reconcile = await fetch(`${base}/api/v1/reconcile`, {
    method: 'POST',
    headers: { ...api, 'content-type': 'application/json' },
    body: JSON.stringify({ target: 'all' }),
  });
  t.equal(reconcile.status, 202, 'a manual reconcile with the API token');
  const runUrl = ((await reconcile.json()) as { status_url: string }).status_url;
  await waitFor(
    'the manual run',
    () => fetch(`${base}${runUrl}`, { headers: api }).then((r) => r.json() as Promise<{ done?: boolean }>),
    (p) => p.done === true,
  );
  const wrong = { authorization: `Bearer ${SECRETS.FLUKE_API_TOKEN}x` };
  t.equal((await fetch(`${base}/api/v1/agents`, { headers: wrong })).status, 403, 'a wrong API token');
  const basicAuth = `Basic ${Buffer.from(`ops:${SECRETS.FLUKE_API_TOKEN}`).toString('base64')}`;
  t.equal((await fetch(`${base}/queues/api/queues`, { headers: { authorization: basicAuth } })).status, 200);
  t.equal((await fetch(`${base}/metrics`, { headers: api })).status, 200);
  const hook = (token: string) =>
    fetch(`${base}/api/v1/webhooks/git`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': token },
      body: JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', after: 'a'.repeat(40) }),
    });
  t.equal((await hook(SECRETS.FLUKE_WEBHOOK_SECRET)).status, 202, 'a webhook with the secret');
  t.equal((await hook(`${SECRETS.FLUKE_WEBHOOK_SECRET}x`)).status, 401, 'a webhook with a wrong one');
  const intruder = new WebSocket(`ws://127.0.0.1:${agentsPort}/agent`, {
    headers: { authorization: `Bearer ${SECRETS.FLUKE_AGENT_TOKEN}x` },
  });
  await new Promise<void>((resolve) => {
    intruder.on('error', () => resolve());
    intruder.on('unexpected-response', () => resolve());
  });
  intruder.terminate();

  // Orderly shutdown logs too.
  for (const name of ['agent', 'reconciler', 'gateway']) await processes[name]?.stop('SIGTERM');

  const needles = [
    ...Object.values(SECRETS),
    // The Basic header's base64 and the URL-encoded forms.
    Buffer.from(`ops:${SECRETS.FLUKE_API_TOKEN}`).toString('base64'),
  ];
  let total = 0;
  for (const [name, handle] of Object.entries(processes)) {
    const output = handle.output();
    total += output.length;
    for (const secret of needles) t.notOk(output.includes(secret), `${name}: no ${secret.slice(0, 10)}…`);
    const { json, other } = logLines(output);
    t.same(other, [], `${name}: every output line is a JSON log line`);
    t.ok(
      json.every(
        (l) => typeof l.level === 'number' && typeof l.time === 'number' && typeof l.msg === 'string',
      ),
      `${name}: pino fields on every line`,
    );
    t.same(
      json.filter((l) => l.name !== `fluke-${name}`),
      [],
      `${name}: named fluke-${name}`,
    );
  }
  t.ok(total > 2000, 'there was plenty of output to search');
  const all = Object.values(processes).flatMap((h) => logLines(h.output()).json);
  t.ok(
    all.some((l) => l.level === 20),
    'debug lines were written',
  );
  const registered = all.find((l) => l.name === 'fluke-gateway' && l.msg === 'agent registered');
  t.match(registered, { agent: 'web-01', session: /^[0-9a-f-]{36}$/ }, 'the session child logger');
  const polled = all.find((l) => l.name === 'fluke-reconciler' && l.msg === 'desired state updated');
  t.match(polled, { queue: 'poll', job: String }, 'the job child logger');
  const action = all.find((l) => l.msg === 'agent registered' || l.msg === 'agent starting');
  t.ok(action, 'agent-side lines too');
});

t.test('format = "pretty" writes human lines, not JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluke-pretty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Nothing listens there: the agent starts, logs, and retries.
  writeFileSync(join(dir, 'agent.hcl'), agentHcl(await freePort(), 'pretty-01', 'pretty'));
  const agent = spawnFluke(['agent', '--config', join(dir, 'agent.hcl')], { ...SECRETS });
  t.teardown(() => agent.stop('SIGKILL'));
  const output = await waitFor(
    'pretty output',
    async () => agent.output(),
    (o) => o.includes('agent starting'),
  );
  await agent.stop('SIGTERM');
  const line = output.split('\n').find((l) => l.includes('agent starting')) ?? '';
  t.match(line, /INFO.*\(fluke-agent\/\d+\).*agent starting|INFO.*agent starting/, 'a pino-pretty line');
  t.throws(() => JSON.parse(line), 'not JSON');
  t.notOk(agent.output().includes(SECRETS.FLUKE_AGENT_TOKEN), 'no token either');
});
