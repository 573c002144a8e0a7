/**
 * The real `bin/fluke` CLI (built, spawned) against a live system: private Redis, real Git repo,
 * the all-in-one server and real agent processes. Run `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ApiClient } from '../bin/cli/api-client.js';
import { EXIT } from '../bin/cli/cli-error.js';
import { freePort } from '../testkit/redis.js';
import { API_TOKEN, root, sandbox, startSystem, waitFor } from '../testkit/system.js';
import { startHttpReceiver } from './helpers/http-receiver.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Live {
  stdout(): string;
  exited: Promise<Run>;
  running(): boolean;
}

/** `fluke ARGS` as a child process with only the env given (plus PATH), killed on teardown. */
function fluke(t: { teardown(fn: () => unknown): void }, args: string[], env: NodeJS.ProcessEnv): Live {
  const child = spawn(process.execPath, [join(root, 'bin', 'fluke'), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<Run>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return {
    stdout: () => stdout,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
  };
}

const TICKS = 8;

t.test('the CLI against a live system', async (t) => {
  const host = sandbox(t);
  const receiver = await startHttpReceiver();
  t.teardown(() => receiver.close());
  const shell = (name: string, check: string, command: string) =>
    `  shell "${name}" {\n    check   = ${JSON.stringify(check)}\n    command = ${JSON.stringify(command)}\n  }\n`;
  const task = (name: string, body: string, extra = '') =>
    `task "${name}" {\n  description = "the ${name} task"\n${extra}  selector { match_labels = { role = "web" } }\n${body}}\n`;
  const sys = await startSystem(t, {
    alertWebhook: `${receiver.url}/hook`,
    files: {
      'site.fluke.hcl': task('site', shell('index', `test -f ${host}/index`, `echo hi > ${host}/index`)),
      'manual.fluke.hcl': [
        task(
          'motd',
          // Per agent (`$PPID` is the agent process that runs the shell): the two agents share one
          // sandbox, and a shared file would let one agent's apply satisfy the other's check.
          shell('motd', `test -f ${host}/motd-$PPID`, `touch ${host}/motd-$PPID`),
          '  drift { policy = "alert_only" }\n',
        ),
        task(
          'broken',
          shell('boom', 'false', 'echo boom >&2; exit 3'),
          '  drift { policy = "alert_only" }\n',
        ),
        task(
          'slow',
          shell(
            'work',
            `test ! -f ${host}/redo`,
            `for i in $(seq 1 ${TICKS}); do echo tick $i; sleep 0.5; done; rm -f ${host}/redo`,
          ),
          '  drift { policy = "alert_only" }\n',
        ),
      ].join('\n'),
    },
  });
  // Both agents share one sandbox as their "host": every command must tolerate the other running it.
  await sys.startAgent('web-01', { role: 'web', env: 'test' });
  await sys.startAgent('web-02', { role: 'web', env: 'test' });
  const env = { FLUKE_SERVER: sys.url('') };
  const withToken = { ...env, FLUKE_API_TOKEN: API_TOKEN };

  // Both agents connected, checked every task, applied site and found motd drifted.
  await waitFor(
    'first results',
    () => sys.get<{ drift: { agent: string; task: string }[] }>('/api/v1/drift'),
    (d) => ['web-01', 'web-02'].every((a) => d.drift.some((x) => x.agent === a && x.task === 'motd')),
    90_000,
  );
  await waitFor('site applied', async () => existsSync(join(host, 'index')), Boolean);

  await t.test('get agents -o json prints the merged list; the table has the agents', async (t) => {
    const json = await fluke(t, ['get', 'agents', '-o', 'json'], env).exited;
    t.equal(json.code, 0, json.stderr);
    const agents = JSON.parse(json.stdout) as {
      name: string;
      connected: boolean;
      labels: Record<string, string>;
    }[];
    t.same(
      agents.map((a) => [a.name, a.connected, a.labels.role]),
      [
        ['web-01', true, 'web'],
        ['web-02', true, 'web'],
      ],
    );
    const table = await fluke(t, ['get', 'agents'], env).exited;
    t.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    t.match(lines[0], /^NAME +LABELS +CONNECTED +LAST SEEN +DRIFT$/);
    t.match(lines[1], /^web-01 +env=test,role=web +yes +\d+s ago +\d\/4 ok/);
    t.match(lines[2], /^web-02 /);
    // The client follows next_cursor: one agent per page still gives both.
    const paged = await new ApiClient({ server: sys.url(''), token: null }).getAll<{ name: string }>(
      '/api/v1/agents',
      'agents',
      {},
      1,
    );
    t.same(
      paged.map((a) => a.name),
      ['web-01', 'web-02'],
      'paged one at a time',
    );
  });

  await t.test('get tasks, get drift, get events', async (t) => {
    const tasks = await fluke(t, ['get', 'tasks'], env).exited;
    t.equal(tasks.code, 0, tasks.stderr);
    t.match(tasks.stdout, /^NAME +POLICY +STEPS +AGENTS +STATUS +DESCRIPTION\n/);
    t.match(tasks.stdout, /\nmotd +alert_only +1 +2 +drifted=2 +the motd task\n/);
    t.match(tasks.stdout, /\nsite +remediate +1 +2 +[a-z]+=\d( [a-z]+=\d)* +the site task\n/);
    const drift = await fluke(t, ['get', 'drift', '-o', 'json'], env).exited;
    t.equal(drift.code, 0, drift.stderr);
    t.match(JSON.parse(drift.stdout), [{ agent: 'web-01', task: String, outcome: String }]);
    const events = await fluke(
      t,
      ['get', 'events', '--agent', 'web-02', '--task', 'site', '--limit', '1'],
      env,
    ).exited;
    t.equal(events.code, 0, events.stderr);
    const rows = events.stdout.trimEnd().split('\n');
    t.equal(rows.length, 2, 'a header and one event');
    t.match(rows[1], /^\d+s ago +web-02 +site +task_run +(applied|satisfied) /);
  });

  await t.test('describe task shows the definition in order and per-agent status', async (t) => {
    const out = await fluke(t, ['describe', 'task', 'slow'], env).exited;
    t.equal(out.code, 0, out.stderr);
    t.match(
      out.stdout,
      /^Name: +slow\nDescription: +the slow task\nPolicy: +alert_only\nSelector: +role=web\n/,
    );
    t.match(
      out.stdout,
      /Steps \(in order\):\n {2}1\. shell "work"\n +check: +test ! -f .*\/redo\n +command: +for i in/,
    );
    t.match(out.stdout, /on_failure: +abort/);
    t.match(out.stdout, /Agents:\n +AGENT +CONNECTED +OUTCOME .*\n +web-01 +yes +satisfied /);
    const agent = await fluke(t, ['describe', 'agent', 'web-01'], env).exited;
    t.equal(agent.code, 0, agent.stderr);
    t.match(agent.stdout, /^Name: +web-01\nLabels: +env=test,role=web\nConnected: +yes, since /);
    t.match(agent.stdout, /Tasks:\n +TASK +OUTCOME .*\n( +\S+ .*\n)* +motd +drifted +check /);
    t.match(agent.stdout, /Events \(newest first\):\n +AGE +TASK +KIND/);
    const missing = await fluke(t, ['describe', 'agent', 'ghost'], env).exited;
    t.equal(missing.code, EXIT.FAILURE);
    t.equal(missing.stderr, 'fluke describe: not found: no agent "ghost"\n');
  });

  await t.test('reconcile follows to a summary; a failing task exits non-zero', async (t) => {
    const ok = await fluke(t, ['reconcile', 'task', 'motd'], withToken).exited;
    t.equal(ok.code, 0, ok.stdout + ok.stderr);
    t.match(ok.stdout, /^reconcile task motd: run [0-9a-f-]{36}\n/);
    t.match(
      ok.stdout,
      /\nweb-01 +motd +applied +\S+\nweb-02 +motd +applied +\S+\n|\nweb-02 +motd +applied +\S+\nweb-01 +motd +applied +\S+\n/,
    );
    t.match(ok.stdout, /\ndone: 2 agents, 2 succeeded, 0 failed, 0 skipped, 0 timed out\n$/);
    t.equal(
      readdirSync(host).filter((f) => f.startsWith('motd-')).length,
      2,
      'the manual reconcile applied an alert_only task, on both agents',
    );

    const bad = await fluke(t, ['reconcile', 'agent', 'web-01'], withToken).exited;
    t.equal(bad.code, EXIT.FAILURE, bad.stdout + bad.stderr);
    t.match(bad.stdout, /\nweb-01 +broken +failed +\S+\n/);
    t.match(bad.stdout, /\nweb-01 +site +(satisfied|applied) +\S+\n/);
    t.match(bad.stdout, /\ndone: 1 agent, 3 succeeded, 1 failed, 0 skipped, 0 timed out\n$/);
  });

  await t.test('logs -f streams a slow task live and exits with its outcome', async (t) => {
    writeFileSync(join(host, 'redo'), '');
    const started = await fluke(t, ['reconcile', 'task', 'slow', '--no-follow', '-o', 'json'], withToken)
      .exited;
    t.equal(started.code, 0, started.stderr);
    const { id } = JSON.parse(started.stdout) as { id: string };
    const progress = await waitFor(
      'the executions dispatched',
      () => sys.get<{ executions?: { agent: string; execution_id: string }[] }>(`/api/v1/reconcile/${id}`),
      (p) => (p.executions ?? []).length === 2,
    );
    const execution = progress.executions?.find((e) => e.agent === 'web-01')?.execution_id as string;
    const follow = fluke(t, ['logs', '-f', execution], env);
    await waitFor(
      'the first tick',
      async () => follow.stdout(),
      (o) => o.includes('tick 1\n'),
      60_000,
    );
    t.ok(follow.running(), 'the first line arrived while the task still ran');
    const done = await follow.exited;
    t.equal(done.code, 0, done.stderr);
    const ticks = done.stdout.split('\n').filter((l) => l.includes('tick'));
    t.same(
      ticks,
      Array.from({ length: TICKS }, (_, i) => `[work/apply] tick ${i + 1}`),
      'every line once, in order',
    );
    t.equal(done.stderr, `execution ${execution}: applied\n`);

    const later = await fluke(t, ['logs', execution], env).exited;
    t.equal(later.code, 0, later.stderr);
    t.match(later.stdout, /\[work\/apply\] tick 1\n[\s\S]*\[work\/apply\] tick 8\n/);
    t.match(later.stderr, new RegExp(`execution ${execution} \\(web-01/slow\\): applied`));
    const unknown = await fluke(t, ['logs', 'no-such-execution'], env).exited;
    t.equal(unknown.code, EXIT.FAILURE);
    t.match(unknown.stderr, /not found: no execution "no-such-execution"/);
  });

  await t.test('a refused or missing token says so and exits 4', async (t) => {
    const refused = await fluke(t, ['reconcile', 'all'], { ...env, FLUKE_API_TOKEN: 'not-a-token' }).exited;
    t.equal(refused.code, EXIT.AUTH);
    t.match(
      refused.stderr,
      /refused the request \(403\): API token refused — FLUKE_API_TOKEN is not accepted/,
    );
    const missing = await fluke(t, ['reconcile', 'all'], env).exited;
    t.equal(missing.code, EXIT.AUTH);
    t.match(
      missing.stderr,
      /refused the request \(401\): missing Authorization: Bearer .*set FLUKE_API_TOKEN/,
    );
  });
});

t.test('an unreachable server: the message and exit 3', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}`;
  const out = await fluke(t, ['get', 'agents'], { FLUKE_SERVER: url }).exited;
  t.equal(out.code, EXIT.UNREACHABLE);
  t.equal(
    out.stderr,
    `fluke get: cannot reach Fluke at ${url}: ECONNREFUSED — is the server running? set --server or FLUKE_SERVER\n`,
  );
  const flag = await fluke(t, ['--server', url, 'describe', 'task', 'x'], {}).exited;
  t.equal(flag.code, EXIT.UNREACHABLE, '--server before the command works too');
});

t.test('bad usage exits 2 with usage text; version prints build info', async (t) => {
  const unknown = await fluke(t, ['frobnicate'], {}).exited;
  t.equal(unknown.code, EXIT.USAGE);
  t.match(unknown.stderr, /unknown command "frobnicate"[\s\S]*usage: fluke <command>/);
  const flag = await fluke(t, ['get', 'agents', '--wide'], {}).exited;
  t.equal(flag.code, EXIT.USAGE);
  t.match(flag.stderr, /^fluke get: unknown flag --wide\n\nusage: fluke get RESOURCE/);
  const version = await fluke(t, ['version', '-o', 'json'], {}).exited;
  t.equal(version.code, 0);
  t.match(JSON.parse(version.stdout), {
    version: String,
    protocol: Number,
    node: process.version,
    built_at: String,
  });
  const text = await fluke(t, ['version'], {}).exited;
  t.match(
    text.stdout,
    /^fluke \d+\.\d+\.\d+\n {2}commit: +(\S+)\n {2}built: +\S+\n {2}protocol: +v\d+\n {2}node: +v/,
  );
});
