/**
 * The CLI commands in-process against a scripted HTTP server: paging, the token, every failure
 * message and exit code, usage errors. Following runs and streams is in cli-follow.test.ts; the
 * live-system tests are in cli-e2e.test.ts.
 */
import t from 'tap';
import { ApiClient } from '../bin/cli/api-client.js';
import type { CliIo } from '../bin/cli/cli-context.js';
import { CliError, EXIT } from '../bin/cli/cli-error.js';
import { describe } from '../bin/commands/describe.js';
import { get } from '../bin/commands/get.js';
import { logs } from '../bin/commands/logs.js';
import { reconcile } from '../bin/commands/reconcile.js';
import { freePort } from '../testkit/redis.js';
import { fakeServer, captureIo as io, json } from './helpers/fake-api.js';

const agent = (name: string) => ({
  name,
  labels: { role: 'web' },
  connected: true,
  gateway_id: 'g1',
  session_id: 's1',
  connected_at: new Date().toISOString(),
  last_seen: new Date().toISOString(),
  agent_version: '0.1.0',
  executors: ['shell'],
  drift: { tasks: 1, ok: 1, drifted: 0, failing: 0, unknown: 0 },
});

t.test('get agents follows next_cursor to the end; -o json prints the merged array', async (t) => {
  const fake = await fakeServer(t);
  fake.route('GET /api/v1/agents', (_req, url, res) => {
    const cursor = url.searchParams.get('cursor');
    if (cursor === null) return json(res, 200, { agents: [agent('a-1'), agent('a-2')], next_cursor: 'c2' });
    if (cursor === 'c2') return json(res, 200, { agents: [agent('b-1')], next_cursor: null });
    json(res, 400, { error: 'bad cursor', code: 'invalid_cursor' });
  });
  const c = io({ FLUKE_SERVER: fake.url });
  t.equal(await get(['agents', '-o', 'json'], c), 0);
  t.same(
    (JSON.parse(c.out) as { name: string }[]).map((a) => a.name),
    ['a-1', 'a-2', 'b-1'],
  );
  t.same(
    fake.requests.map((r) => r.path),
    ['/api/v1/agents?limit=500', '/api/v1/agents?limit=500&cursor=c2'],
  );
  t.equal(fake.requests[0]?.auth, undefined, 'no token, no header');

  const table = io({ FLUKE_SERVER: fake.url });
  t.equal(await get(['agents'], table), 0);
  const lines = table.out.trimEnd().split('\n');
  t.match(lines[0], /^NAME\s+LABELS\s+CONNECTED\s+LAST SEEN\s+DRIFT$/);
  t.match(lines[3], /^b-1\s+role=web\s+yes\s+\d+s ago\s+1\/1 ok$/);
});

t.test('the token goes as Bearer on reads; 401 and 403 say what to do (exit 4)', async (t) => {
  const fake = await fakeServer(t);
  fake.route('GET /api/v1/tasks', (req, _url, res) => {
    const auth = req.headers.authorization;
    if (!auth)
      return json(res, 401, { error: 'missing Authorization: Bearer <api token>', code: 'unauthorized' });
    if (auth !== 'Bearer good') return json(res, 403, { error: 'API token refused', code: 'forbidden' });
    json(res, 200, { revision: 'abc', tasks: [], next_cursor: null });
  });
  const ok = io({ FLUKE_SERVER: fake.url, FLUKE_API_TOKEN: 'good' });
  t.equal(await get(['tasks'], ok), 0);
  t.equal(fake.requests[0]?.auth, 'Bearer good');
  t.match(ok.err, /no tasks/);

  const none = io({ FLUKE_SERVER: fake.url });
  t.equal(await get(['tasks'], none), EXIT.AUTH);
  t.match(none.err, /refused the request \(401\): missing Authorization.*set FLUKE_API_TOKEN/);

  const bad = io({ FLUKE_SERVER: fake.url, FLUKE_API_TOKEN: 'wrong' });
  t.equal(await get(['tasks'], bad), EXIT.AUTH);
  t.match(bad.err, /refused the request \(403\): API token refused — FLUKE_API_TOKEN is not accepted/);
});

t.test('404, server errors, non-JSON answers and an unreachable server', async (t) => {
  const fake = await fakeServer(t);
  fake.route('GET /api/v1/agents/ghost', (_r, _u, res) =>
    json(res, 404, { error: 'no agent "ghost"', code: 'not_found' }),
  );
  fake.route('GET /api/v1/drift', (_r, _u, res) =>
    json(res, 500, { error: 'internal error', code: 'internal' }),
  );
  fake.route('GET /api/v1/tasks/x', (_r, _u, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html>not fluke</html>');
  });
  const nf = io();
  t.equal(await describe(['agent', 'ghost', '--server', fake.url], nf), EXIT.FAILURE);
  t.equal(nf.err, 'fluke describe: not found: no agent "ghost"\n');

  const five = io();
  t.equal(await get(['drift', `--server=${fake.url}`], five), EXIT.FAILURE);
  t.match(five.err, /GET \/api\/v1\/drift failed \(500 internal\): internal error/);

  const html = io();
  t.equal(await describe(['task', 'x', '--server', fake.url], html), EXIT.FAILURE);
  t.match(html.err, /is not JSON — is --server pointing at Fluke\?/);

  const closed = `http://127.0.0.1:${await freePort()}`;
  const down = io({ FLUKE_SERVER: closed });
  t.equal(await get(['agents'], down), EXIT.UNREACHABLE);
  t.equal(
    down.err,
    `fluke get: cannot reach Fluke at ${closed}: ECONNREFUSED — is the server running? set --server or FLUKE_SERVER\n`,
  );
});

t.test('bad usage: exit 2 with the usage text, before any request', async (t) => {
  const cases: [(a: string[], i: CliIo) => Promise<number>, string[], RegExp][] = [
    [get, ['agents', '--agnet', 'x'], /unknown flag --agnet/],
    [get, [], /missing RESOURCE/],
    [get, ['nodes'], /unknown resource "nodes"/],
    [get, ['agents', '--agent', 'x'], /--agent applies to "get events" only/],
    [get, ['events', '--limit', '0'], /--limit must be a positive whole number/],
    [get, ['agents', '-o', 'yaml'], /-o must be "table" or "json"/],
    [get, ['agents', '--server', 'ftp://x'], /must start with http:\/\/ or https:\/\//],
    [describe, ['agent'], /describe agent needs a NAME/],
    [describe, ['node', 'x'], /cannot describe "node"/],
    [reconcile, ['everything'], /unknown target "everything"/],
    [reconcile, ['all', '--timeout', '5'], /--timeout: invalid duration "5"/],
    [logs, [], /missing EXECUTION_ID/],
    [logs, ['a', 'b'], /unexpected argument b/],
  ];
  for (const [cmd, argv, message] of cases) {
    const c = io({ FLUKE_SERVER: 'http://127.0.0.1:9' });
    t.equal(await cmd(argv, c), EXIT.USAGE, argv.join(' '));
    t.match(c.err, message, argv.join(' '));
    t.match(c.err, /\n\nusage: fluke /, 'usage text follows');
  }
  const help = io();
  t.equal(await get(['--help'], help), 0);
  t.match(help.out, /^usage: fluke get RESOURCE/);
});

t.test('get events pages past the API maximum to honour --limit', async (t) => {
  const fake = await fakeServer(t);
  const event = (i: number) => ({
    kind: 'timeout',
    id: `e${i}`,
    at: new Date().toISOString(),
    agent: 'web-01',
    labels: {},
    task: 'site',
    revision: 'r',
    trigger: 'manual',
    mode: 'apply',
    policy: 'remediate',
    instruction_id: 'i',
    execution_id: `x${i}`,
    outcome: 'timeout',
    waited_ms: 30_000,
  });
  fake.route('GET /api/v1/events', (_req, url, res) => {
    const from = Number(url.searchParams.get('cursor') ?? 0);
    const limit = Number(url.searchParams.get('limit'));
    const events = Array.from({ length: limit }, (_, i) => event(from + i));
    json(res, 200, { events, next_cursor: String(from + limit) });
  });
  const c = io({ FLUKE_SERVER: fake.url });
  t.equal(await get(['events', '--limit', '1200', '--agent', 'web-01', '-o', 'json'], c), 0);
  t.equal((JSON.parse(c.out) as unknown[]).length, 1200);
  t.same(
    fake.requests.map((r) => r.path),
    ['/api/v1/events?agent=web-01&limit=1000', '/api/v1/events?agent=web-01&limit=200&cursor=1000'],
  );
  const table = io({ FLUKE_SERVER: fake.url });
  t.equal(await get(['events', '--limit', '2'], table), 0);
  t.match(table.out, /^AGE\s+AGENT\s+TASK\s+KIND\s+OUTCOME\s+TRIGGER\s+EXECUTION\s+DETAIL\n/);
  t.match(table.out, /web-01\s+site\s+timeout\s+timeout\s+manual\s+x1\s+no answer in 30s\n$/);
});

t.test('a stream that goes silent fails as unreachable instead of hanging', async (t) => {
  const fake = await fakeServer(t);
  fake.route('GET /api/v1/executions/x3/stream', (_req, _url, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(': hello\n\n');
    // …and then nothing, not even a ping.
  });
  const client = new ApiClient({ server: fake.url, token: null, streamIdleMs: 300 });
  const stream = await client.stream('/api/v1/executions/x3/stream');
  const seen: string[] = [];
  const err = await (async () => {
    for await (const chunk of stream.chunks) seen.push(chunk);
  })().then(
    () => null,
    (e: unknown) => e,
  );
  t.same(seen, [': hello\n\n']);
  t.ok(err instanceof CliError, 'a CliError');
  t.equal((err as CliError).exitCode, EXIT.UNREACHABLE);
  t.match((err as CliError).message, /cannot reach Fluke at http:\/\/127\.0\.0\.1:\d+: ETIMEDOUT/);
});
