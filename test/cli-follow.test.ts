/**
 * `fluke reconcile` following a run and `fluke logs` (with -f over real server-sent events),
 * in-process against a scripted HTTP server.
 */
import type { ServerResponse } from 'node:http';
import t from 'tap';
import { EXIT } from '../bin/cli/cli-error.js';
import { logs } from '../bin/commands/logs.js';
import { reconcile } from '../bin/commands/reconcile.js';
import { fakeServer, captureIo as io, json } from './helpers/fake-api.js';

t.test('reconcile follows progress: one line per result, a summary, exit by outcome', async (t) => {
  const fake = await fakeServer(t);
  let polls = 0;
  let failLast = false;
  fake.route('POST /api/v1/reconcile', (req, _url, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      t.same(JSON.parse(body), { target: 'task', name: 'site' });
      t.equal(req.headers.authorization, 'Bearer tok');
      json(res, 202, { id: 'run-1', status_url: '/api/v1/reconcile/run-1' });
    });
  });
  fake.route('GET /api/v1/reconcile/run-1', (_req, _url, res) => {
    polls++;
    const base = {
      meta: { id: 'run-1', target: 'task', name: 'site', created_at: '' },
      agents: { 'web-01': 'dispatched', 'web-02': 'dispatched' },
      executions: [],
    };
    const s = { targeted_agents: 2, pending: 0, succeeded: 0, failed: 0, skipped: 0, timed_out: 0 };
    if (polls === 1) return json(res, 200, { ...base, agents: {}, done: false, results: [], summary: s });
    if (polls === 2)
      return json(res, 200, {
        ...base,
        done: false,
        results: [
          { agent: 'web-01', task: 'site', outcome: 'applied', execution_id: 'e1' },
          { agent: 'web-02', task: 'site', outcome: 'pending', execution_id: null },
        ],
        executions: [{ agent: 'web-02', task: 'site', execution_id: 'e2' }],
        summary: { ...s, pending: 1, succeeded: 1 },
      });
    json(res, 200, {
      ...base,
      done: true,
      results: [
        { agent: 'web-01', task: 'site', outcome: 'applied', execution_id: 'e1' },
        { agent: 'web-02', task: 'site', outcome: failLast ? 'failed' : 'satisfied', execution_id: 'e2' },
      ],
      summary: { ...s, succeeded: failLast ? 1 : 2, failed: failLast ? 1 : 0 },
    });
  });
  const env = { FLUKE_SERVER: fake.url, FLUKE_API_TOKEN: 'tok' };
  const c = io(env);
  t.equal(await reconcile(['task', 'site'], c), 0);
  t.equal(
    c.out,
    [
      'reconcile task site: run run-1',
      'web-01  site  applied        e1',
      'web-02  site  satisfied      e2',
      'done: 2 agents, 2 succeeded, 0 failed, 0 skipped, 0 timed out',
      '',
    ].join('\n'),
  );

  polls = 0;
  failLast = true;
  const failed = io(env);
  t.equal(await reconcile(['task', 'site'], failed), EXIT.FAILURE, 'a failed task fails the command');
  t.match(failed.out, /web-02 {2}site {2}failed +e2\ndone: 2 agents, 1 succeeded, 1 failed/);

  polls = 0;
  const json1 = io(env);
  t.equal(await reconcile(['task', 'site', '-o', 'json'], json1), EXIT.FAILURE);
  t.match(JSON.parse(json1.out), { done: true, summary: { failed: 1 } }, '-o json prints the final progress');

  const noFollow = io(env);
  t.equal(await reconcile(['task', 'site', '--no-follow'], noFollow), 0);
  t.equal(noFollow.out, 'run-1\n');
});

t.test('reconcile gives up after --timeout with exit 1 and says where the run goes on', async (t) => {
  const fake = await fakeServer(t);
  fake.route('POST /api/v1/reconcile', (_req, _url, res) => json(res, 202, { id: 'r2', status_url: '' }));
  fake.route('GET /api/v1/reconcile/r2', (_req, _url, res) =>
    json(res, 200, {
      meta: { id: 'r2', target: 'all', name: null, created_at: '' },
      done: false,
      agents: { 'web-01': 'dispatched' },
      executions: [],
      results: [{ agent: 'web-01', task: 'slow', outcome: 'pending' }],
      summary: { targeted_agents: 1, pending: 1, succeeded: 0, failed: 0, skipped: 0, timed_out: 0 },
    }),
  );
  const c = io({ FLUKE_SERVER: fake.url });
  const started = Date.now();
  t.equal(await reconcile(['all', '--timeout', '1s'], c), EXIT.FAILURE);
  t.ok(Date.now() - started < 10_000, 'stopped soon after the timeout');
  t.match(c.out, /not done: 1 agent, 0 succeeded, 0 failed, 0 skipped, 0 timed out, 1 pending/);
  t.match(
    c.err,
    /gave up waiting after 1s; the run goes on — see http:\/\/127\.0\.0\.1:\d+\/api\/v1\/reconcile\/r2/,
  );
});

/** Writes `text` in pieces of `size` characters, one per timer tick, so the client sees real splits. */
async function dribble(res: ServerResponse, text: string, size: number): Promise<void> {
  for (let i = 0; i < text.length; i += size) {
    res.write(text.slice(i, i + size));
    await new Promise((r) => setTimeout(r, 2));
  }
}

t.test('logs -f prints streamed output until end; exit follows the outcome', async (t) => {
  const fake = await fakeServer(t);
  const record = (line: string, stream = 'stdout') =>
    JSON.stringify({
      agent: 'w',
      execution_id: 'x1',
      task: 'site',
      step: 'conf',
      phase: 'apply',
      stream,
      line,
      at: 1,
    });
  let outcome: string | null = 'applied';
  let sendEnd = true;
  fake.route('GET /api/v1/executions/x1/stream', async (req, _url, res) => {
    t.equal(req.headers.accept, 'text/event-stream');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    await dribble(
      res,
      `: ping\n\nevent: output\ndata: ${record('one')}\n\nevent: output\r\ndata: ${record('two', 'stderr')}\r\n\r\n`,
      7,
    );
    if (sendEnd) res.write(`event: end\ndata: ${JSON.stringify({ execution_id: 'x1', outcome })}\n\n`);
    res.end();
  });
  const ok = io({ FLUKE_SERVER: fake.url });
  t.equal(await logs(['x1', '-f'], ok), 0);
  t.equal(ok.out, '[conf/apply] one\n[conf/apply stderr] two\n');
  t.equal(ok.err, 'execution x1: applied\n');

  outcome = 'failed';
  const failed = io({ FLUKE_SERVER: fake.url });
  t.equal(await logs(['--follow', 'x1'], failed), EXIT.FAILURE);
  t.equal(failed.err, 'execution x1: failed\n');

  const ndjson = io({ FLUKE_SERVER: fake.url });
  t.equal(await logs(['x1', '-f', '-o', 'json'], ndjson), EXIT.FAILURE);
  t.same(
    ndjson.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    [
      JSON.parse(record('one')),
      JSON.parse(record('two', 'stderr')),
      { execution_id: 'x1', outcome: 'failed' },
    ],
  );

  sendEnd = false;
  const cut = io({ FLUKE_SERVER: fake.url });
  t.equal(await logs(['x1', '-f'], cut), EXIT.UNREACHABLE);
  t.match(cut.err, /closed the stream of execution x1 before it ended/);

  const missing = io({ FLUKE_SERVER: fake.url });
  t.equal(await logs(['nope', '-f'], missing), EXIT.FAILURE);
  t.match(missing.err, /not found: no route for \/api\/v1\/executions\/nope\/stream/);
});

t.test('logs without -f prints the buffered output and where the execution stands', async (t) => {
  const fake = await fakeServer(t);
  fake.route('GET /api/v1/executions/x2', (_r, _u, res) =>
    json(res, 200, {
      execution: { id: 'x2', agent: 'w', task: 'site', done: true, outcome: 'satisfied', event: null },
      output: [
        {
          agent: 'w',
          execution_id: 'x2',
          task: 'site',
          step: 'conf',
          phase: 'check',
          stream: 'stdout',
          line: 'ok',
          at: 1,
        },
      ],
    }),
  );
  const c = io({ FLUKE_SERVER: fake.url });
  t.equal(await logs(['x2'], c), 0);
  t.equal(c.out, '[conf/check] ok\n');
  t.equal(c.err, 'execution x2 (w/site): satisfied\n');
});
