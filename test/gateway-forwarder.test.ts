/** The gateway's ResultForwarder: batched results jobs, acks only after the enqueue resolved. */
import t from 'tap';
import {
  isoNow,
  type JobQueue,
  RecentResultIds,
  ResultForwarder,
  type ResultSource,
} from '../gateway/result-forwarder.js';
import { RESULTS_PER_JOB, type ResultsJob } from '../shared/jobs/payloads.js';
import type { Logger } from '../shared/logger.js';
import type { TaskResultMessage } from '../shared/protocol.js';

const logger = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

function source(agent: string, acks: string[][]): ResultSource {
  return { agent, sessionId: `s-${agent}`, ack: (ids) => acks.push(ids) };
}

const result = (id: string): TaskResultMessage => ({
  type: 'task_result',
  result_id: id,
  instruction_id: 'i-1',
  execution_id: 'i-1.0',
  task: 'motd',
  mode: 'check',
  outcome: 'satisfied',
  started_at: '2025-03-13T14:22:00.000Z',
  finished_at: '2025-03-13T14:22:01.000Z',
  duration_ms: 1,
  steps: [],
});

class FakeQueue implements JobQueue {
  calls: Array<Array<{ name: string; data: ResultsJob }>> = [];
  gate: Promise<void> = Promise.resolve();
  fail = false;
  async add(): Promise<unknown> {
    throw new Error('not used');
  }
  async addBulk(jobs: Array<{ name: string; data: unknown }>): Promise<unknown> {
    await this.gate;
    if (this.fail) throw new Error('redis down');
    this.calls.push(jobs as Array<{ name: string; data: ResultsJob }>);
    return jobs;
  }
}

t.test('one flush: few jobs of ≤ RESULTS_PER_JOB messages, each agent whole and in order', async (t) => {
  const queue = new FakeQueue();
  const f = new ResultForwarder({ queue, gatewayId: 'g', timeoutMs: 1000, maxPending: 10_000, logger });
  const acks = new Map<string, string[][]>();
  const sources = ['a', 'b', 'c'].map((name) => {
    const list: string[][] = [];
    acks.set(name, list);
    return source(name, list);
  });
  let release!: () => void;
  queue.gate = new Promise((r) => {
    release = r;
  });
  // 3 agents × 30 results, interleaved; one agent with more than a job holds.
  for (let i = 0; i < 30; i++) for (const s of sources) f.push(s, result(`${s.agent}-${i}`));
  const big = source('big', []);
  const bigAcks: string[][] = [];
  big.ack = (ids) => bigAcks.push(ids);
  for (let i = 0; i < RESULTS_PER_JOB + 20; i++) f.push(big, result(`big-${i}`));
  await new Promise((r) => setImmediate(r));
  t.same([...acks.values()].flat(), [], 'no ack before the enqueue resolved');
  release();
  await f.idle();
  const jobs = queue.calls.flat();
  t.equal(queue.calls.length, 1, 'one addBulk');
  t.ok(jobs.length <= 3, `few jobs (${jobs.length})`);
  for (const job of jobs) {
    t.equal(job.name, 'results');
    t.equal(job.data.kind, 'results');
    t.equal(job.data.gateway_id, 'g');
    t.ok(job.data.items.length <= RESULTS_PER_JOB);
  }
  const items = jobs.flatMap((j) => j.data.items);
  t.equal(items.length, 90 + RESULTS_PER_JOB + 20, 'every message once');
  for (const name of ['a', 'b', 'c', 'big']) {
    const ids = items.filter((i) => i.agent === name).map((i) => (i.message as TaskResultMessage).result_id);
    const n = name === 'big' ? RESULTS_PER_JOB + 20 : 30;
    t.same(
      ids,
      Array.from({ length: n }, (_, i) => `${name}-${i}`),
      `${name}: in order`,
    );
    t.ok(items.filter((i) => i.agent === name).every((i) => i.session_id === `s-${name}`));
  }
  // Agents that fit are not split over jobs.
  for (const name of ['a', 'b', 'c']) {
    t.equal(jobs.filter((j) => j.data.items.some((i) => i.agent === name)).length, 1, `${name} in one job`);
  }
  t.same(acks.get('a')?.flat().length, 30);
  t.same(bigAcks.flat().length, RESULTS_PER_JOB + 20);
});

t.test('a failed enqueue acks nothing; a re-send after success is acked without a second job', async (t) => {
  const queue = new FakeQueue();
  const outcomes: boolean[] = [];
  const f = new ResultForwarder({
    queue,
    gatewayId: 'g',
    timeoutMs: 1000,
    maxPending: 100,
    logger,
    onBatch: (b) => outcomes.push(b.ok),
  });
  const acks: string[][] = [];
  const s = source('a', acks);
  queue.fail = true;
  f.push(s, result('r1'));
  await f.idle();
  t.same(acks, [], 'not acked');
  t.same(queue.calls, []);
  queue.fail = false;
  f.push(s, result('r1'));
  await f.idle();
  t.same(acks, [['r1']]);
  t.equal(queue.calls.flat().length, 1);
  f.push(s, result('r1'));
  f.push(s, result('r2'));
  await f.idle();
  t.same(acks.flat().sort(), ['r1', 'r1', 'r2']);
  t.same(
    queue.calls.flat().flatMap((j) => j.data.items.map((i) => (i.message as TaskResultMessage).result_id)),
    ['r1', 'r2'],
    'r1 enqueued once',
  );
  t.same(outcomes, [false, true, true]);
});

t.test('a burst keeps at most two enqueues in flight; the rest leave together after', async (t) => {
  const queue = new FakeQueue();
  let entered = 0;
  let release!: () => void;
  queue.gate = new Promise((r) => {
    release = r;
  });
  const addBulk = queue.addBulk.bind(queue);
  queue.addBulk = (jobs) => {
    entered++;
    return addBulk(jobs);
  };
  const f = new ResultForwarder({ queue, gatewayId: 'g', timeoutMs: 5000, maxPending: 10_000, logger });
  const acks: string[][] = [];
  const s = source('a', acks);
  // Ten event-loop turns of results, as a burst of agents answering arrives.
  for (let turn = 0; turn < 10; turn++) {
    f.push(s, result(`r${turn}`));
    await new Promise((r) => setImmediate(r));
  }
  t.equal(entered, 2, 'two enqueues started; the other results wait');
  release();
  await f.idle();
  t.equal(entered, 3, 'the waiting eight left in one more enqueue');
  t.same(acks.flat().sort(), Array.from({ length: 10 }, (_, i) => `r${i}`).sort(), 'every result acked');
});

t.test('pushAll: the messages of one frame share one read time; a full backlog takes a prefix', async (t) => {
  const queue = new FakeQueue();
  let release!: () => void;
  queue.gate = new Promise((r) => {
    release = r;
  });
  const f = new ResultForwarder({ queue, gatewayId: 'g', timeoutMs: 1000, maxPending: 5, logger });
  const acks: string[][] = [];
  const s = source('a', acks);
  const frame = Array.from({ length: 8 }, (_, i) => result(`r${i}`));
  t.equal(f.pushAll(s, frame, '2025-03-13T14:22:05.000Z'), 5, 'five fit');
  t.equal(f.pushAll(s, [result('r8')]), 0, 'then none');
  t.notOk(f.push(s, result('r9')), 'push refuses too');
  release();
  await f.idle();
  const items = queue.calls.flat().flatMap((j) => j.data.items);
  t.same(
    items.map((i) => (i.message as TaskResultMessage).result_id),
    ['r0', 'r1', 'r2', 'r3', 'r4'],
  );
  t.ok(items.every((i) => i.received_at === '2025-03-13T14:22:05.000Z'));
  t.same(acks.flat(), ['r0', 'r1', 'r2', 'r3', 'r4'], 'only what was taken is acked');
  t.equal(f.pushAll(s, frame.slice(5)), 3, 'room again once enqueued');
  await f.idle();
  t.same(acks.flat().slice(5), ['r5', 'r6', 'r7']);
});

t.test('an enqueue that timed out still holds its results against the cap until it settles', async (t) => {
  const queue = new FakeQueue();
  let release!: () => void;
  queue.gate = new Promise((r) => {
    release = r;
  });
  const outcomes: Array<{ ok: boolean; count: number }> = [];
  const f = new ResultForwarder({
    queue,
    gatewayId: 'g',
    timeoutMs: 50,
    maxPending: 5,
    logger,
    onBatch: (b) => outcomes.push({ ok: b.ok, count: b.count }),
  });
  const acks: string[][] = [];
  const s = source('a', acks);
  t.equal(f.pushAll(s, [result('r0'), result('r1'), result('r2')]), 3);
  await f.idle();
  t.same(outcomes, [{ ok: false, count: 3 }], 'timed out: not acked');
  t.same(acks, []);
  // Redis has not answered: the client still holds those three (it sends them once Redis is back).
  t.equal(f.pushAll(s, [result('r3'), result('r4'), result('r5')]), 2, 'only the rest of the cap is free');
  await f.idle();
  release();
  await new Promise((r) => setImmediate(r));
  t.equal(f.pushAll(s, [result('r5'), result('r6'), result('r7')]), 3, 'room again once it settled');
  await f.idle();
  t.same(acks.flat().sort(), ['r5', 'r6', 'r7'], 'what was enqueued in time is acked');
  // A flush with nothing to enqueue (a re-send of a result already enqueued) reports no outcome.
  const before = outcomes.length;
  f.push(s, result('r6'));
  await f.idle();
  t.equal(outcomes.length, before, 'no outcome for a flush without jobs');
});

t.test('RecentResultIds: the newest capacity to 2 × capacity ids, per agent', async (t) => {
  const r = new RecentResultIds(3);
  for (const id of ['1', '2', '3']) r.add('a', id);
  t.ok(['1', '2', '3'].every((id) => r.has('a', id)));
  t.notOk(r.has('b', '1'), 'ids are per agent');
  r.add('a', '3');
  r.add('a', '4');
  t.ok(
    ['1', '2', '3', '4'].every((id) => r.has('a', id)),
    'a full generation is kept as the old one',
  );
  r.add('b', '5');
  r.add('a', '6');
  r.add('a', '7');
  t.notOk(r.has('a', '1'), 'the generation before is dropped whole');
  t.ok(['4', '6', '7'].every((id) => r.has('a', id)) && r.has('b', '5'));
});

t.test('isoNow formats once per millisecond', async (t) => {
  const a = isoNow(1_700_000_000_000);
  t.equal(a, new Date(1_700_000_000_000).toISOString());
  t.equal(isoNow(1_700_000_000_000), a, 'same millisecond, same string');
  t.equal(isoNow(1_700_000_000_001), '2023-11-14T22:13:20.001Z');
});
