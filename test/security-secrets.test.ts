/**
 * Secrets stay secret (issue 11, findings 6 and 7), on a real server, Redis, Git and agents:
 * planted secrets go in (a step env value, a field marked sensitive, the alert webhook's path, Git
 * URL credentials) and every way out is read back (API, UI, Bull Board, alert bodies, Redis job
 * data, logs, agent output) to show none of them leaves. Spawned agents run the built CLI
 * (`npm run build` first).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createMiseExecutor } from '../agent/executors/mise.js';
import { startServices } from '../bin/services.js';
import { parseServerConfig } from '../shared/config/load.js';
import { isLoopbackHost, resolveReadAccess } from '../shared/config/read-access.js';
import { createLogger } from '../shared/logger.js';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import {
  idHint,
  maskValues,
  REDACTED,
  redactBoardText,
  redactJobData,
  redactSecrets,
  redactStep,
  secretValues,
} from '../shared/redact.js';
import type { Step } from '../shared/types.js';
import { freePort, startRedis } from '../testkit/redis.js';
import { API_TOKEN, sandbox, serverHcl, startSystem, waitFor } from '../testkit/system.js';
import { startConsoleServices } from './helpers/console-services.js';
import { startHttpReceiver } from './helpers/http-receiver.js';

const SECRET_ENV = 'planted-secret-1';
const SECRET_MARKED = 'planted-secret-2';
const SECRET_ALERT = 'planted-secret-3';
const SECRET_GIT = 'planted-secret-4';

/** A logger that keeps every line, with the production redaction rules (shared/logger.ts). */
function capturedLogger() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', format: 'json' }, 'fluke-test', {
    write: (s: string) => {
      lines.push(s);
    },
  });
  return { logger, text: () => lines.join('') };
}

function noSecrets(t: Test, where: string, text: string, secrets: readonly string[]): void {
  for (const s of secrets) t.notOk(text.includes(s), `${where} does not contain ${s}`);
}

async function getText(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, text: await res.text() };
}

/** A port nothing listens on: a Git URL there fails at once, with git naming the URL. */
async function closedPort(): Promise<number> {
  return freePort();
}

t.test('redaction rules (pure)', async (t) => {
  t.equal(
    redactSecrets(`fetch https://${SECRET_GIT}@git.example.com/r.git`),
    'fetch https://***@git.example.com/r.git',
  );
  t.equal(redactSecrets(`https://bob:${SECRET_GIT}@h/r.git`), 'https://***@h/r.git');
  t.equal(redactSecrets(`https://${SECRET_GIT}:x-oauth-basic@h/r`), 'https://***@h/r', 'token as the user');
  t.equal(redactSecrets(`'https://u:p@ss@h/r'`), `'https://***@h/r'`, 'an unencoded @ in the password');
  t.equal(redactSecrets(`redis://:${SECRET_GIT}@redis:6379`), 'redis://***@redis:6379');
  t.equal(
    redactSecrets('ssh://git@example.com/r.git'),
    'ssh://git@example.com/r.git',
    'an ssh login is no secret',
  );
  t.equal(redactSecrets(`git+ssh://git:${SECRET_GIT}@h/r`), 'git+ssh://git:***@h/r');
  t.equal(
    redactSecrets('git@github.com:org/repo.git'),
    'git@github.com:org/repo.git',
    'scp-like without password',
  );
  t.equal(redactSecrets(`clone deploy:${SECRET_GIT}@h.example:org/r`), 'clone deploy:***@h.example:org/r');
  t.equal(redactSecrets('mail me at ops@example.com'), 'mail me at ops@example.com', 'plain text untouched');

  const step: Step = {
    type: 'shell',
    name: 's',
    check: `echo ${SECRET_MARKED}`,
    command: 'true',
    working_dir: null,
    run_as: null,
    env: { DB_PASSWORD: SECRET_ENV },
    on_failure: 'abort',
    sensitive: ['check'],
  };
  t.same(redactStep(step), { ...step, check: REDACTED, env: { DB_PASSWORD: REDACTED } });
  t.same(
    secretValues(step),
    [SECRET_ENV, `echo ${SECRET_MARKED}`].sort((a, b) => b.length - a.length),
  );
  t.equal(maskValues(`pw=${SECRET_ENV}`, secretValues(step)), `pw=${REDACTED}`);

  const data = redactJobData({
    kind: 'results',
    items: [{ message: { instruction_id: 'i-123', execution_id: 'e-9', output_tail: 'x', env: { A: 'b' } } }],
    url: `https://hooks.example/${SECRET_ALERT}`,
  }) as { items: [{ message: Record<string, unknown> }]; url: string };
  t.equal(data.url, REDACTED);
  t.equal(data.items[0].message['instruction_id'], idHint('i-123'));
  t.not(idHint('i-123'), 'i-123');
  t.same(data.items[0].message['env'], { A: REDACTED });
  t.equal(
    redactBoardText('task db is already executing (instruction i25-mxasmp2m)'),
    `task db is already executing (instruction ${idHint('i25-mxasmp2m')})`,
    'an id named in prose',
  );
  t.same(
    redactJobData({ reason: 'busy (instruction i25-mxasmp2m)' }),
    { reason: `busy (instruction ${idHint('i25-mxasmp2m')})` },
    'job data text names no id',
  );
});

t.test('finding 7: a Fluke logger strips URL credentials from messages and errors', async (t) => {
  const log = capturedLogger();
  const url = `https://${SECRET_GIT}@git.example.com/r.git`;
  log.logger.warn(`fetch from ${url} failed`);
  log.logger.warn({ err: new Error(`cannot reach ${url}`) }, 'git');
  log.logger.warn({ err: `cannot reach ${url}` }, 'git');
  await new Promise((r) => setImmediate(r));
  t.equal(
    log.text().split('https://***@git.example.com').length,
    5,
    'every mention kept, without credentials',
  );
  noSecrets(t, 'the log', log.text(), [SECRET_GIT]);
});

t.test('finding 6: a manifest marks fields sensitive (`sensitive = [...]`)', async (t) => {
  const compile = (body: string) =>
    new ManifestCompiler().compile([
      { path: 'm.fluke.hcl', content: `task "t" {\n  selector { match_labels = { a = "b" } }\n${body}\n}\n` },
    ]);
  const good = await compile(
    '  shell "s" {\n    check = "true"\n    command = "x"\n    sensitive = ["command", "check"]\n  }\n  systemd "u" {\n    unit = "a.service"\n    sensitive = ["unit"]\n  }',
  );
  t.same(good.errors, []);
  t.same(good.state.tasks[0]?.steps[0]?.sensitive, ['command', 'check']);
  t.same(good.state.tasks[0]?.steps[1]?.sensitive, ['unit']);
  const plain = await compile('  shell "s" {\n    check = "true"\n    command = "x"\n  }');
  t.notOk('sensitive' in (plain.state.tasks[0]?.steps[0] ?? {}), 'absent when none is listed');
  const bad = await compile(
    '  shell "s" {\n    check = "true"\n    command = "x"\n    sensitive = ["unit"]\n  }',
  );
  t.match(bad.errors[0]?.message, /sensitive: "unit" is not a field of a shell step/);
  const notList = await compile(
    '  shell "s" {\n    check = "true"\n    command = "x"\n    sensitive = "command"\n  }',
  );
  t.match(notList.errors[0]?.message, /sensitive must be a list of strings/);
});

t.test('finding 6: reads are open only on a loopback listen_http (api_read_access = "auto")', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1'])
    t.ok(isLoopbackHost(host), `${host} is loopback`);
  for (const host of ['', '0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1'])
    t.notOk(isLoopbackHost(host), `${host || '(every interface)'} is not loopback`);
  t.equal(resolveReadAccess('auto', ':7071').access, 'token', 'the default :7071 binds every interface');
  t.equal(resolveReadAccess('auto', '127.0.0.1:7071').access, 'open');
  t.equal(resolveReadAccess('auto', '[::1]:7071').access, 'open');
  t.equal(resolveReadAccess('open', '0.0.0.0:7071').access, 'open', 'an explicit open stays open');
  t.equal(resolveReadAccess('token', '127.0.0.1:7071').access, 'token');

  // A real server bound to every interface, reached through loopback.
  const log = capturedLogger();
  const { services, base } = await startConsoleServices(t, {
    readAccess: 'auto',
    httpHost: '0.0.0.0',
    logger: log.logger,
  });
  t.equal(services.config.api_read_access, 'auto', 'auto is the default');
  for (const path of [
    '/api/v1/status',
    '/api/v1/agents',
    '/api/v1/tasks',
    '/api/v1/events',
    '/queues/api/queues',
  ]) {
    t.equal((await getText(`${base}${path}`)).status, 401, `${path} without a token: 401`);
    t.equal((await getText(`${base}${path}`, API_TOKEN)).status, 200, `${path} with the API token: 200`);
  }
  t.equal((await getText(`${base}/healthz`)).status, 200, 'probes stay open');
  t.match(
    log.text(),
    /reads need an API token: api_read_access = \\"auto\\" and listen_http 0\.0\.0\.0:\d+ binds every interface/,
  );
});

t.test(
  'finding 6: reads and the board never show env values, sensitive fields, alert URLs or ids',
  async (t) => {
    const host = sandbox(t);
    mkdirSync(join(host, 'out'), { recursive: true });
    const receiver = await startHttpReceiver();
    t.teardown(() => receiver.close());
    const log = capturedLogger();
    const manifest = `task "db" {
  selector { match_labels = { role = "db" } }
  drift { policy = "remediate_and_alert" }
  shell "password" {
    check   = "test -f ${host}/out/applied"
    command = "echo \\"pw=$DB_PASSWORD\\"; printf %s \\"$DB_PASSWORD\\" > ${host}/out/seen; touch ${host}/out/applied"
    env     = { DB_PASSWORD = "${SECRET_ENV}" }
  }
  shell "marked" {
    check     = "test ${SECRET_MARKED} = ${SECRET_MARKED}"
    command   = "true"
    sensitive = ["check"]
  }
}
`;
    const sys = await startSystem(t, {
      files: { 'db.fluke.hcl': manifest },
      alertWebhook: `${receiver.url}/hook/${SECRET_ALERT}`,
      logger: log.logger,
    });
    await sys.startAgent('db-01', { role: 'db' });

    // The agent gets the real value: its command wrote what it saw.
    await waitFor('the apply ran', async () => existsSync(join(host, 'out', 'seen')), Boolean, 90_000);
    t.equal(
      readFileSync(join(host, 'out', 'seen'), 'utf8'),
      SECRET_ENV,
      'the command saw the real env value',
    );
    const alerts = await receiver.waitForRequests(2, 90_000);
    t.same(
      alerts.map((a) => a.path.includes(SECRET_ALERT)),
      [true, true],
      `alerts went to the configured URL: ${alerts.map((a) => a.path).join(', ')}`,
    );

    // Reads are open here: listen_http is 127.0.0.1 (auto).
    t.equal((await getText(sys.url('/api/v1/status'))).status, 200, 'loopback bind: reads need no token');

    const events = await waitFor(
      'the applied event',
      () => sys.get<{ events: Array<Record<string, unknown>> }>('/api/v1/events'),
      (e) => e.events.some((ev) => ev['outcome'] === 'applied'),
    );
    const ids = new Set<string>();
    const executions = new Set<string>();
    for (const ev of events.events) {
      for (const key of ['instruction_id', 'execution_id'])
        if (typeof ev[key] === 'string') ids.add(ev[key] as string);
      if (typeof ev['execution_id'] === 'string') executions.add(ev['execution_id']);
    }
    t.ok(ids.size > 0, 'the events name instructions and executions');
    const eventsText = JSON.stringify(events);
    t.match(
      eventsText,
      `pw=${REDACTED}`,
      'the env value printed by the command is masked in the output tail',
    );

    const task = await sys.get<{ task: { steps: Array<Record<string, unknown>> } }>('/api/v1/tasks/db');
    t.same(task.task.steps[0]?.['env'], { DB_PASSWORD: REDACTED }, 'env keys kept, values redacted');
    t.equal(task.task.steps[1]?.['check'], REDACTED, 'a field marked sensitive is redacted');
    t.same(task.task.steps[1]?.['sensitive'], ['check']);

    const secrets = [SECRET_ENV, SECRET_MARKED, SECRET_ALERT];
    const paths = [
      '/api/v1/status',
      '/api/v1/agents',
      '/api/v1/agents/db-01',
      '/api/v1/tasks',
      '/api/v1/tasks/db',
      '/api/v1/drift',
      '/api/v1/events',
      ...[...executions].map((id) => `/api/v1/executions/${encodeURIComponent(id)}`),
      '/',
      '/app.js',
      '/api.js',
    ];
    for (const path of paths) {
      const { status, text } = await getText(sys.url(path));
      t.ok(status < 400 || status === 404, `${path}: ${status}`);
      noSecrets(t, path, text, secrets);
    }

    // Bull Board: every queue's jobs, as its JSON API serves them to the board's page.
    let boardJobs = 0;
    for (const queue of ['poll', 'reconcile', 'results', 'alerts']) {
      for (const status of ['latest', 'completed', 'failed']) {
        const { text } = await getText(
          sys.url(`/queues/api/queues?activeQueue=${queue}&status=${status}&page=1&jobsPerPage=100`),
        );
        noSecrets(t, `board ${queue}/${status}`, text, secrets);
        for (const id of ids) {
          const at = text.indexOf(id);
          t.notOk(at >= 0, `board ${queue}/${status} does not show id ${id}`, {
            context: at >= 0 ? text.slice(Math.max(0, at - 300), at + 100) : '',
          });
        }
        boardJobs += (text.match(/"timestamp"/g) ?? []).length;
      }
    }
    t.ok(boardJobs > 0, 'the board showed jobs (results, alerts)');

    for (const a of alerts) noSecrets(t, 'an alert body', a.body.toString(), secrets);

    // The alert URL never enters Redis at all (job data included); env values do (the agent needs them).
    const client = sys.redis.client();
    t.teardown(() => client.quit());
    const keys = await client.keys('*');
    let inRedis = '';
    for (const key of keys) {
      const type = await client.type(key);
      if (type === 'string') inRedis += await client.getBuffer(key).then((b) => b?.toString('latin1') ?? '');
      else if (type === 'hash') inRedis += JSON.stringify(await client.hgetall(key));
      else if (type === 'list') inRedis += JSON.stringify(await client.lrange(key, 0, -1));
      else if (type === 'stream') inRedis += JSON.stringify(await client.xrange(key, '-', '+'));
      else if (type === 'zset') inRedis += JSON.stringify(await client.zrange(key, '0', '-1'));
      else if (type === 'set') inRedis += JSON.stringify(await client.smembers(key));
    }
    t.ok(inRedis.includes(SECRET_ENV), 'the scan reads job and stream data (the run message is there)');
    t.notOk(inRedis.includes(SECRET_ALERT), 'the alert URL is nowhere in Redis');

    noSecrets(t, 'the server log', log.text(), secrets);
  },
);

t.test('finding 7: git credentials never reach logs, status, events or output', async (t) => {
  // The reconciler's Git source, with a token as the URL's user part and a closed port.
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const dir = sandbox(t);
  const httpPort = await freePort();
  const repo = `https://${SECRET_GIT}@127.0.0.1:${await closedPort()}/ops/manifests.git`;
  const source = serverHcl({
    agentsPort: await freePort(),
    httpPort,
    redisUrl: redis.url,
    prefix: redis.prefix,
    repo,
    pollInterval: '1s',
    heartbeat: '1s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore: 'redis',
  });
  const config = await parseServerConfig(join(dir, 'server.hcl'), source, {});
  const log = capturedLogger();
  const services = await startServices(config, 'server', { dataDir: dir, logger: log.logger });
  t.teardown(() => services.close());
  const base = `http://127.0.0.1:${httpPort}`;
  const status = await waitFor(
    'a failed poll',
    async () =>
      JSON.parse((await getText(`${base}/api/v1/status`)).text) as { last_error: { message: string } | null },
    (s) => s.last_error !== null,
  );
  t.match(status.last_error?.message, /127\.0\.0\.1/, 'the error names the repository');
  t.match(status.last_error?.message, /\*\*\*@127\.0\.0\.1/, 'without its credentials');
  for (const path of [
    '/api/v1/status',
    '/api/v1/events',
    '/queues/api/queues?activeQueue=poll&status=latest',
  ])
    noSecrets(t, path, (await getText(`${base}${path}`)).text, [SECRET_GIT]);
  await waitFor(
    'the fetch failure logged',
    async () => log.text(),
    (text) => text.includes('git fetch failed'),
  );
  t.match(log.text(), /127\.0\.0\.1/, 'the log names the repository');
  noSecrets(t, 'the server log', log.text(), [SECRET_GIT]);

  // The mise executor's git sync: what it prints and reports.
  const host = sandbox(t);
  const lines: string[] = [];
  const mise = createMiseExecutor({ miseBin: '/nonexistent/mise' });
  const result = await mise.check(
    {
      type: 'mise',
      name: 'svc',
      working_dir: join(host, 'svc'),
      check_task: 'check',
      apply_task: 'apply',
      git: { url: `https://deploy:${SECRET_GIT}@127.0.0.1:${await closedPort()}/svc.git`, branch: 'main' },
    },
    {
      signal: new AbortController().signal,
      timeoutMs: 30_000,
      logger: createLogger({ level: 'error', format: 'json' }, 'agent', { write: () => {} }),
      onLine: (_stream, line) => lines.push(line),
    },
  );
  const reported = JSON.stringify({ result, lines });
  t.match(reported, /git sync of .* failed/, 'the sync failed and said so');
  t.match(reported, /127\.0\.0\.1/, 'naming the repository');
  noSecrets(t, 'the mise executor output', reported, [SECRET_GIT]);
});
