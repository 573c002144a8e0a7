/**
 * Executions: GET /api/v1/executions/{id} and its live stream (server-sent events). First on a
 * real Redis with output written as the gateway writes it; then end to end, a real agent running
 * a command that prints slowly, followed from a manual reconcile's progress.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import type { ExecutionView } from '../bin/cli/api-types.js';
import { openExecutionStream, ReplayFilter } from '../console/execution-stream.js';
import { deadlineHandler } from '../reconciler/handlers/deadline.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import type { OutputRecord } from '../store/output/output.js';
import { OutputPublisher, publishEndRecords } from '../store/output/output-publisher.js';
import type { RunProgress } from '../store/runs/run-store.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';
import { startApiServer } from './helpers/api-server.js';
import { openSse, type SseStream } from './helpers/sse-client.js';

function record(instruction: string, agent: string, tasks: string[]): InstructionRecord {
  return {
    instruction_id: instruction,
    agent,
    session_id: 's-1',
    trigger: 'manual',
    run_id: null,
    revision: 'r1',
    created_at: new Date().toISOString(),
    retry: 0,
    tasks: tasks.map((task, i) => ({
      task,
      execution_id: `${instruction}.${i}`,
      mode: 'apply',
      policy: 'remediate',
    })),
  };
}

/** Events until the stream ends: output lines, then the end's data. */
async function drain(stream: SseStream): Promise<{ lines: string[]; end: unknown }> {
  const lines: string[] = [];
  for (;;) {
    const e = await stream.next();
    if (e.event === 'end') {
      await stream.closed;
      return { lines, end: JSON.parse(e.data) };
    }
    lines.push((JSON.parse(e.data) as OutputRecord).line);
  }
}

t.test('replay filter: a live message the replay held is skipped once per copy', async (t) => {
  const f = new ReplayFilter(['a', 'b', 'a']);
  t.equal(f.seen('a'), true);
  t.equal(f.seen('a'), true);
  t.equal(f.seen('a'), false, 'a third copy is new');
  t.equal(f.seen('c'), false);
  t.equal(f.seen('b'), true);
});

t.test('a stream: what arrives live while the replay is read is sent once, then the end', async (t) => {
  const rec = (line: string) =>
    JSON.stringify({
      agent: 'a',
      execution_id: 'x.0',
      task: 't',
      step: 's',
      phase: 'apply',
      stream: 'stdout',
      line,
      at: 1,
    });
  const end = JSON.stringify({
    kind: 'end',
    agent: 'a',
    execution_id: 'x.0',
    task: 't',
    outcome: 'failed',
    at: 2,
  });
  let listener = null as ((m: string) => void) | null;
  let subscribed = 0;
  const deps = {
    subscribe: async (_channel: string, l: (m: string) => void) => {
      listener = l;
      subscribed++;
      return () => {
        subscribed--;
      };
    },
    channelOf: (id: string) => `out:${id}`,
    // Published between the SUBSCRIBE and the LRANGE: in both.
    readRecords: async () => {
      listener?.(rec('two'));
      return [rec('one'), rec('two')];
    },
    ended: async () => null,
    pingMs: 60_000,
    subscribeTimeoutMs: 1000,
    logger: pino({ level: 'silent' }),
  };
  const attach = await openExecutionStream('x.0', deps);
  listener?.(rec('three'));
  const chunks: string[] = [];
  let ended = false;
  const closers: (() => void)[] = [];
  attach({
    send: (c) => {
      chunks.push(c);
      return true;
    },
    end: () => {
      ended = true;
      for (const c of closers) c();
    },
    onClose: (cb) => {
      closers.push(cb);
    },
  });
  listener?.(rec('four'));
  listener?.(end);
  listener?.(rec('after the end'));
  const events = chunks.filter((c) => !c.startsWith(':'));
  t.same(
    events.map((c) => (c.startsWith('event: output') ? JSON.parse(c.split('data: ')[1] as string).line : c)),
    ['one', 'two', 'three', 'four', 'event: end\ndata: {"execution_id":"x.0","outcome":"failed"}\n\n'],
  );
  t.equal(ended, true);
  t.equal(subscribed, 0, 'unsubscribed at the end');

  const again = await openExecutionStream('x.0', deps);
  again({ send: () => false, end: () => {}, onClose: (cb) => cb() });
  t.equal(subscribed, 0, 'a client that left before the stream started releases its subscription');
});

t.test('the deadline ends the executions it times out', async (t) => {
  const rec = record('i-9', 'web-01', ['a', 'b']);
  const ended: unknown[] = [];
  const outcome = await deadlineHandler(
    { instruction_id: 'i-9', misses: 2 },
    {
      getInstruction: async () => ({ record: rec, pending: ['b'] }),
      isRunning: async () => false,
      timeOut: async () => {},
      reschedule: async () => {},
      endExecutions: async (ends) => {
        ended.push(...ends);
      },
      checkEveryMs: 1000,
      maxWaitMs: 60_000,
    },
  );
  t.equal(outcome, 'timed_out');
  t.same(ended, [{ agent: 'web-01', task: 'b', execution_id: 'i-9.1' }]);
});

t.test('executions over Redis: replay, live, end, bounds', async (t) => {
  const api = await startApiServer(t, { maxStreams: 2, streamPingMs: 200 });
  const redis = api.redis.client();
  const instructions = new RedisInstructionStore({ redis, keys: api.keys });
  const publisher = new OutputPublisher({
    redis,
    keys: api.keys,
    logger: pino({ level: 'silent' }),
    bufferLines: 1000,
    bufferTtlMs: 3600_000,
    maxPending: 1000,
  });
  const line = (execution_id: string, text: string) =>
    publisher.push('web-01', {
      type: 'output',
      execution_id,
      task: 'deploy',
      step: 'count',
      phase: 'apply',
      stream: 'stdout',
      line: text,
    });
  const buffered = (id: string, n: number) =>
    waitFor(
      `${n} lines buffered`,
      () => redis.llen(api.keys.outputBuffer(id)),
      (l) => l >= n,
    );
  const subscribers = async (id: string) => {
    const reply = (await redis.pubsub('NUMSUB', api.keys.outputChannel(id))) as [string, number];
    return Number(reply[1]);
  };
  const get = async (id: string) => {
    const res = await fetch(api.url(`/api/v1/executions/${id}`));
    return { status: res.status, json: (await res.json()) as ExecutionView & { code?: string } };
  };
  await instructions.save(record('i-a', 'web-01', ['deploy']));

  let res = await get('i-a.0');
  t.equal(res.status, 200);
  t.same(res.json, {
    execution: { id: 'i-a.0', agent: 'web-01', task: 'deploy', done: false, outcome: null, event: null },
    output: [],
  });
  t.equal((await get('nope.0')).status, 404);
  const unknown = await fetch(api.url('/api/v1/executions/nope.0/stream'));
  t.equal(unknown.status, 404, 'an unknown execution has no stream');
  t.match(await unknown.json(), { code: 'not_found' });

  line('i-a.0', 'line1');
  line('i-a.0', 'line2');
  await buffered('i-a.0', 2);
  const late = await openSse(api.url('/api/v1/executions/i-a.0/stream'));
  t.equal(late.status, 200);
  t.match(late.headers.get('content-type'), /^text\/event-stream/);
  const other = await openSse(api.url('/api/v1/executions/i-a.0/stream'));
  const first = await late.next();
  t.equal(first.event, 'output');
  t.match(JSON.parse(first.data), { agent: 'web-01', execution_id: 'i-a.0', task: 'deploy', line: 'line1' });
  t.equal(await subscribers('i-a.0'), 1, 'two viewers share one subscription');

  const full = await fetch(api.url('/api/v1/executions/i-a.0/stream'));
  t.equal(full.status, 503, 'past maxStreams');
  t.match(await full.json(), { code: 'too_many_streams' });

  line('i-a.0', 'line3');
  line('i-a.0', 'same');
  line('i-a.0', 'same');
  publisher.end('web-01', { execution_id: 'i-a.0', task: 'deploy', outcome: 'applied' });
  publisher.end('web-01', { execution_id: 'i-a.0', task: 'deploy', outcome: 'applied' });
  // A silent execution (no output here, like most drift checks) costs Redis nothing at its end.
  publisher.end('web-01', { execution_id: 'i-silent.0', task: 'deploy', outcome: 'satisfied' });
  const want = ['line1', 'line2', 'line3', 'same', 'same'];
  const a = await drain(late);
  t.same(a.lines, want.slice(1), 'the late viewer: replay, then live, nothing twice');
  t.same(a.end, { execution_id: 'i-a.0', outcome: 'applied' });
  t.same((await drain(other)).lines, want, 'the other viewer too');
  await waitFor(
    'unsubscribed',
    () => subscribers('i-a.0'),
    (n) => n === 0,
  );

  const replay = await openSse(api.url('/api/v1/executions/i-a.0/stream'));
  t.equal(replay.status, 200, 'slots are released when streams end');
  const r = await drain(replay);
  t.same(r.lines, want, 'after the end: the whole replay, then end, then close');
  t.same(r.end, { execution_id: 'i-a.0', outcome: 'applied' });
  t.equal(
    (await redis.lrange(api.keys.outputBuffer('i-a.0'), 0, -1)).filter((x) => x.includes('"kind":"end"'))
      .length,
    1,
    'a re-sent result does not end twice',
  );
  t.equal(await redis.exists(api.keys.outputBuffer('i-silent.0')), 0, 'no end record for silent executions');

  res = await get('i-a.0');
  t.match(res.json.execution, { done: true, outcome: 'applied' });
  t.same(
    res.json.output.map((o) => o.line),
    want,
    'the output, without the end record',
  );

  await instructions.save(record('i-b', 'web-02', ['x', 'y']));
  const aborted = [
    await openSse(api.url('/api/v1/executions/i-b.0/stream')),
    await openSse(api.url('/api/v1/executions/i-b.1/stream')),
  ];
  t.same(
    aborted.map((x) => x.status),
    [200, 200],
  );
  t.equal((await fetch(api.url('/api/v1/executions/i-b.0/stream'))).status, 503, 'both slots taken');
  for (const s of aborted) s.abort();
  await waitFor(
    'the clients that left unsubscribed',
    async () => (await subscribers('i-b.0')) + (await subscribers('i-b.1')),
    (n) => n === 0,
  );

  const timedOut = await openSse(api.url('/api/v1/executions/i-b.0/stream'));
  t.equal(timedOut.status, 200, 'and released their slots');
  await publishEndRecords(redis, api.keys, [
    { agent: 'web-02', task: 'x', execution_id: 'i-b.0', outcome: 'timeout' },
  ]);
  t.same(
    (await drain(timedOut)).end,
    { execution_id: 'i-b.0', outcome: 'timeout' },
    'the reconciler ends a timeout',
  );

  const requeued = await openSse(api.url('/api/v1/executions/i-b.1/stream'));
  t.equal(requeued.status, 200);
  // Finished without an end record (a busy agent's requeue): the next ping's check ends it.
  await instructions.finishTask('i-b', 'y', 'requeued');
  const q = await drain(requeued);
  t.same(q, { lines: [], end: { execution_id: 'i-b.1', outcome: null } });
  t.ok(requeued.comments.includes('ping'), 'pinged');

  await instructions.save(record('i-c', 'web-03', ['z']));
  const open = await openSse(api.url('/api/v1/executions/i-c.0/stream'));
  t.equal(open.status, 200);
  api.close();
  await open.closed;
  await t.rejects(open.next(1000), /stream closed/, 'shutting down closes open streams, with no end event');
  await waitFor(
    'unsubscribed at shutdown',
    () => subscribers('i-c.0'),
    (n) => n === 0,
  );
});

t.test('end to end: a real agent, a manual reconcile, early and late viewers', async (t) => {
  const dir = sandbox(t);
  const flag = join(dir, 'flag');
  const sys = await startSystem(t, {
    pollInterval: '1h',
    files: {
      'slow.fluke.hcl': `
task "slow" {
  selector { match_labels = { role = "web" } }
  shell "count" {
    check   = "test -f ${flag}"
    command = "for i in 1 2 3; do echo line$i; sleep 0.3; done; touch ${flag}"
  }
}
`,
    },
  });
  await sys.startAgent('web-01', { role: 'web' });
  await waitFor('the connect reconcile applied', async () => existsSync(flag), Boolean);
  // The connect reconcile's run may still be finishing; a manual one now would find the task busy.
  await waitFor(
    'the first run recorded',
    () => sys.get<{ events: unknown[] }>('/api/v1/events?agent=web-01&task=slow'),
    (p) => p.events.length > 0,
  );
  unlinkSync(flag);

  const posted = await sys.post('/api/v1/reconcile', { target: 'task', name: 'slow' });
  t.equal(posted.status, 202);
  const runUrl = (posted.json as { status_url: string }).status_url;
  const dispatched = await waitFor(
    'the execution dispatched',
    () => sys.get<RunProgress>(runUrl),
    (p) => p.executions.length === 1,
  );
  const executionId = dispatched.executions[0]?.execution_id as string;
  t.match(dispatched.executions, [{ agent: 'web-01', task: 'slow', execution_id: executionId }]);
  t.match(dispatched.results, [{ agent: 'web-01', task: 'slow', execution_id: executionId }]);

  const streamUrl = sys.url(`/api/v1/executions/${executionId}/stream`);
  const early = await openSse(streamUrl);
  t.equal(early.status, 200);
  await waitFor(
    'line1 printed',
    () => sys.get<ExecutionView>(`/api/v1/executions/${executionId}`),
    (e) => e.output.some((o) => o.line === 'line1'),
  );
  const late = await openSse(streamUrl);
  const [e, l] = await Promise.all([drain(early), drain(late)]);
  const printed = (lines: string[]) => lines.filter((x) => /^line\d$/.test(x));
  t.same(printed(e.lines), ['line1', 'line2', 'line3'], 'the early viewer, live');
  t.same(printed(l.lines), ['line1', 'line2', 'line3'], 'the late viewer: replayed, then live');
  t.same(e.end, { execution_id: executionId, outcome: 'applied' });
  t.same(l.end, { execution_id: executionId, outcome: 'applied' });

  const finished = await waitFor(
    'the run done',
    () => sys.get<RunProgress>(runUrl),
    (p) => p.done,
  );
  t.same(finished.results, [
    { agent: 'web-01', task: 'slow', outcome: 'applied', execution_id: executionId },
  ]);
  const json = await waitFor(
    'its event recorded',
    () => sys.get<ExecutionView>(`/api/v1/executions/${executionId}`),
    (x) => x.execution.event !== null,
  );
  t.match(json.execution, {
    id: executionId,
    agent: 'web-01',
    task: 'slow',
    done: true,
    outcome: 'applied',
    event: { kind: 'task_run', execution_id: executionId, outcome: 'applied' },
  });
  t.same(printed(json.output.map((o) => o.line)), ['line1', 'line2', 'line3']);
});
