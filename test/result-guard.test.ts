/**
 * The gateway's result guard (gateway/result-guard.ts) on its own, with a controlled clock: the
 * bound on live executions per socket, the output token bucket's refill, the warn-line window.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import { AgentConnection } from '../gateway/agent-connection.js';
import type { GatewayEventMap } from '../gateway/gateway-events.js';
import { DROP_LOG_WINDOW_MS, MAX_LIVE_EXECUTIONS, ResultGuard } from '../gateway/result-guard.js';
import { issueInstructionId } from '../shared/identity/instruction-tag.js';
import type { OutputMessage } from '../shared/protocol.js';
import { captureLogger } from './helpers/gateway.js';

const KEY = Buffer.alloc(32, 3);

function world(rate = { bytesPerSecond: 1000, burstBytes: 4000 }) {
  let now = 1_000_000;
  const logs: Array<Record<string, unknown>> = [];
  const events = new EventEmitter<GatewayEventMap>();
  const dropped: Array<{ reason: string; count: number }> = [];
  events.on('agent:dropped', (e) => dropped.push({ reason: e.reason, count: e.count }));
  const logger = captureLogger(logs);
  const guard = new ResultGuard({ identityKey: () => KEY, outputRate: rate, events, logger, now: () => now });
  const conn = new AgentConnection(
    1,
    { kind: 'token', grant: { kind: 'unscoped' }, grant_id: 'unscoped' },
    '10.0.0.9',
    0,
    logger,
    () => {},
  );
  conn.phase = 'registered';
  conn.entry = {
    name: 'web-01',
    labels: {},
    gateway_id: 'gw',
    session_id: 's1',
    connected_at: 0,
    last_seen: 0,
    agent_version: 'test',
    executors: ['shell'],
    running: [],
  };
  return {
    guard,
    conn,
    logs,
    dropped,
    tick: (ms: number) => {
      now += ms;
    },
  };
}

const line = (execution: string, bytes: number): OutputMessage => ({
  type: 'output',
  execution_id: execution,
  task: 't',
  step: 's',
  phase: 'apply',
  stream: 'stdout',
  line: 'x'.repeat(bytes),
});

t.test(
  'live executions per socket: at most 1024, the oldest forgotten, none before the first run',
  async (t) => {
    const w = world({ bytesPerSecond: 1e9, burstBytes: 1e9 });
    t.equal(w.conn.liveExecutions, null, 'nothing allocated before a run');
    const id = issueInstructionId(KEY, 'web-01', 'many');
    const tasks = Array.from({ length: MAX_LIVE_EXECUTIONS + 76 }, (_, i) => ({
      execution_id: `${id}.${i}`,
    }));
    w.guard.delivered(w.conn, JSON.stringify({ type: 'run', instruction_id: id, tasks }));
    t.equal(MAX_LIVE_EXECUTIONS, 1024);
    t.equal(w.conn.liveExecutions?.size, 1024);
    t.notOk(w.guard.output(w.conn, line(`${id}.0`, 1)), 'the oldest was forgotten');
    t.ok(w.guard.output(w.conn, line(`${id}.1099`, 1)));
    t.ok(w.guard.output(w.conn, line(`${id}.76`, 1)));
    // Once its instruction is listed as running, a forgotten execution streams again.
    w.conn.entry!.running = [id];
    t.ok(w.guard.output(w.conn, line(`${id}.0`, 1)));
    // Task results empty the set; an empty set is let go.
    const one = issueInstructionId(KEY, 'web-01', 'one');
    const w2 = world();
    w2.guard.delivered(w2.conn, JSON.stringify({ type: 'run', tasks: [{ execution_id: `${one}.0` }] }));
    w2.guard.results(w2.conn, [
      {
        type: 'task_result',
        result_id: 'r',
        instruction_id: one,
        execution_id: `${one}.0`,
        task: 't',
        mode: 'check',
        outcome: 'satisfied',
        started_at: '',
        finished_at: '',
        duration_ms: 0,
        steps: [],
      },
    ]);
    t.equal(w2.conn.liveExecutions, null);
  },
);

t.test('the output bucket: the burst at once, then the rate', async (t) => {
  const w = world({ bytesPerSecond: 1000, burstBytes: 4000 });
  const id = issueInstructionId(KEY, 'web-01', 'rate');
  w.guard.delivered(w.conn, JSON.stringify({ tasks: [{ execution_id: `${id}.0` }] }));
  const e = `${id}.0`;
  for (let i = 0; i < 4; i++) t.ok(w.guard.output(w.conn, line(e, 1000)), `burst line ${i}`);
  t.notOk(w.guard.output(w.conn, line(e, 1000)));
  w.tick(500);
  t.notOk(w.guard.output(w.conn, line(e, 1000)), 'half a second refills 500 bytes');
  w.tick(500);
  t.ok(w.guard.output(w.conn, line(e, 1000)), 'a second refills 1000');
  w.tick(60_000);
  for (let i = 0; i < 4; i++) t.ok(w.guard.output(w.conn, line(e, 1000)), 'refilled to the burst, no more');
  t.notOk(w.guard.output(w.conn, line(e, 1000)));
  t.same(
    w.dropped.map((d) => d.reason),
    ['output_rate', 'output_rate', 'output_rate'],
  );
});

t.test('dropped messages: one warn line per agent per window, with the count in between', async (t) => {
  const w = world();
  const warns = () => w.logs.filter((l) => l.msg === 'dropped agent messages not issued to it');
  for (let i = 0; i < 50; i++) w.guard.output(w.conn, line('e-1', 1));
  t.equal(warns().length, 1);
  t.match(warns()[0], { level: 40, agent: 'web-01', remote: '10.0.0.9', reason: 'output_not_live' });
  w.tick(DROP_LOG_WINDOW_MS - 1);
  w.guard.output(w.conn, line('e-1', 1));
  t.equal(warns().length, 1, 'still inside the window');
  w.tick(1);
  w.guard.output(w.conn, line('e-1', 1));
  t.equal(warns().length, 2);
  t.match(warns()[1], { dropped_since_last_line: 50 });
  t.equal(DROP_LOG_WINDOW_MS, 10_000);
  t.equal(
    w.dropped.reduce((n, d) => n + d.count, 0),
    52,
    'every drop counted, logged or not',
  );
});

t.test('an instruction tag is checked once per socket, and a foreign id is never let through', async (t) => {
  const w = world();
  const own = issueInstructionId(KEY, 'web-01', 'own');
  const foreign = issueInstructionId(KEY, 'db-01', 'theirs');
  const result = (instruction: string, n: number) => ({
    type: 'task_result' as const,
    result_id: `r-${instruction}-${n}`,
    instruction_id: instruction,
    execution_id: `${instruction}.${n}`,
    task: `t${n}`,
    mode: 'apply' as const,
    outcome: 'applied' as const,
    started_at: '2026-12-05T00:00:00Z',
    finished_at: '2026-12-05T00:00:01Z',
    duration_ms: 1,
    steps: [],
  });
  const batch = [result(own, 0), result(foreign, 0), result(own, 1), result(foreign, 1), result(own, 2)];
  const kept = w.guard.results(w.conn, batch);
  t.same(
    kept.map((m) => m.instruction_id),
    [own, own, own],
    'own results kept in order, interleaved foreign ones dropped',
  );
  t.equal(w.conn.verifiedInstruction, own, 'the verified id is remembered on the socket');
  t.same(w.dropped, [{ reason: 'foreign_instruction', count: 2 }]);
  // A forged execution of the remembered instruction's id shape still fails the execution check.
  const forgedExecution = { ...result(own, 3), execution_id: `${foreign}.3` };
  t.same(w.guard.results(w.conn, [forgedExecution]), [], 'an execution of another instruction is dropped');
});
