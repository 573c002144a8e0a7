/**
 * Batched traffic through a real gateway and Redis: one `results` frame of receipts and results is
 * forwarded item by item and acked by result id; a bad item closes the socket with the item's path;
 * heartbeats from many sockets share registry writes, and a drain discards the ones still waiting.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import type { Keys } from '../shared/keys.js';
import { liveness } from '../shared/liveness.js';
import { CloseCode, PROTOCOL_VERSION } from '../shared/protocol.js';
import type { RegistryEntry } from '../shared/registry-entry.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import type { Registry } from '../store/registry/registry.js';
import { startRedis } from '../testkit/redis.js';
import {
  eventually,
  issued,
  receiptMessage,
  startGateway,
  stepResultMessage,
  TestAgent,
  taskResultMessage,
} from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const gw = await startGateway(r, { gatewayId: 'gw-batch' });
t.teardown(() => gw.stop());
const results = new Queue(QUEUE_NAMES.results, {
  connection: r.client(),
  prefix: gw.keys.bullPrefix(QUEUE_NAMES.results),
});
results.on('error', () => {});
t.teardown(() => results.close());

type Item = { agent: string; session_id: string; received_at: string; message: Record<string, unknown> };

async function queuedItems(): Promise<Item[]> {
  const jobs = await results.getJobs(['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed']);
  return jobs.flatMap((j) => (j.data.kind === 'results' ? (j.data.items as Item[]) : []));
}

const receipt = receiptMessage;
const taskResult = taskResultMessage;

/** Reads result_acks until `n` ids came back; each acked id must already be a queued item. */
async function collectAcks(t: Test, agent: TestAgent, n: number): Promise<{ ids: string[]; acks: number }> {
  const ids: string[] = [];
  let acks = 0;
  while (ids.length < n) {
    const ack = await agent.next('result_ack');
    acks++;
    const queued = new Set((await queuedItems()).map((i) => i.message.result_id));
    for (const id of ack.result_ids) t.ok(queued.has(id), `${id} was enqueued before its ack`);
    ids.push(...ack.result_ids);
  }
  return { ids, acks };
}

t.test('one results frame: every result acked by id, every item a queued results item', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  const reg = await agent.register('batch-01');
  const n = 20;
  const ids = Array.from({ length: n }, (_, i) => `b01-${i}`);
  agent.send({
    type: 'results',
    messages: [
      receipt(issued('batch-01', 'i-b01')),
      ...ids.map((id) => taskResult(issued('batch-01', 'i-b01'), id)),
    ],
  });
  const { ids: acked, acks } = await collectAcks(t, agent, n);
  t.same([...acked].sort(), [...ids].sort(), 'each result acked once');
  t.ok(acks <= 2, `acks grouped per socket (${acks} result_ack for ${n} results)`);
  const items = (await queuedItems()).filter((i) => i.agent === 'batch-01');
  t.equal(items.length, n + 1, 'the receipt and every result');
  t.same(
    items.map((i) => i.message.result_id ?? i.message.type),
    ['instruction_receipt', ...ids],
    'in the order of the frame',
  );
  t.ok(
    items.every((i) => i.session_id === reg.session_id && i.received_at === items[0]?.received_at),
    'one session, one read time for the whole frame',
  );
  t.ok(!Number.isNaN(Date.parse(items[0]?.received_at ?? '')), 'received_at is an ISO time');

  // A batch re-sent after its ack (the agent missed it) is acked again without new items.
  agent.send({
    type: 'results',
    messages: ids.slice(0, 3).map((id) => taskResult(issued('batch-01', 'i-b01'), id)),
  });
  t.same((await agent.next('result_ack')).result_ids, ids.slice(0, 3));
  t.equal((await queuedItems()).filter((i) => i.agent === 'batch-01').length, n + 1);
});

t.test('step results are acked at once and never queued: progress only', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('batch-steps');
  agent.send({
    type: 'results',
    messages: [
      stepResultMessage(issued('batch-steps', 'i-bs'), 's0'),
      taskResult(issued('batch-steps', 'i-bs'), 'r0'),
      stepResultMessage(issued('batch-steps', 'i-bs'), 's1'),
    ],
  });
  t.same(
    (await agent.next('result_ack')).result_ids,
    ['s0', 's1'],
    'the step results are acked before the enqueue resolved',
  );
  t.same((await agent.next('result_ack')).result_ids, ['r0']);
  const items = (await queuedItems()).filter((i) => i.agent === 'batch-steps');
  t.same(
    items.map((i) => i.message.type),
    ['task_result'],
    'only the task result travels',
  );
});

t.test('a batch sent before registered is held and handled once registered', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.opened;
  agent.send({
    type: 'register',
    v: PROTOCOL_VERSION,
    name: 'batch-02',
    labels: {},
    agent_version: 'test',
    executors: ['shell'],
    running: [],
  });
  agent.send({
    type: 'results',
    messages: [
      taskResult(issued('batch-02', 'i-b02'), 'b02-a'),
      taskResult(issued('batch-02', 'i-b02'), 'b02-b'),
    ],
  });
  await agent.next('registered');
  const { ids } = await collectAcks(t, agent, 2);
  t.same([...ids].sort(), ['b02-a', 'b02-b']);
});

t.test('a batch with one bad item closes 4400, naming the item; nothing of it is taken', async (t) => {
  const agent = new TestAgent(gw.url);
  await agent.register('batch-03');
  const step = {
    step: 'x',
    type: 'shell',
    outcome: 'nope',
    exit_code: 0,
    apply_exit_code: null,
    duration_ms: 1,
    output_tail: '',
    error: null,
  };
  agent.send({
    type: 'results',
    messages: [
      receipt(issued('batch-03', 'i-b03')),
      taskResult(issued('batch-03', 'i-b03'), 'b03-1'),
      taskResult(issued('batch-03', 'i-b03'), 'b03-2'),
      { ...taskResult(issued('batch-03', 'i-b03'), 'b03-3'), steps: [step] },
      taskResult(issued('batch-03', 'i-b03'), 'b03-4'),
    ],
  });
  const closed = await agent.closed;
  t.equal(closed.code, CloseCode.badMessage);
  t.match(closed.reason, /^invalid message at messages\.3\.steps\.0\.outcome: /);
  // Give a wrongly taken item time to reach the queue.
  await new Promise((res) => setTimeout(res, 100));
  t.same(
    (await queuedItems()).filter((i) => i.agent === 'batch-03'),
    [],
    'the valid items of a refused frame are not forwarded',
  );
});

t.test('a batch before register closes 4409', async (t) => {
  const agent = new TestAgent(gw.url);
  await agent.opened;
  agent.send({ type: 'results', messages: [receipt(issued('batch-04', 'i-b04'))] });
  const closed = await agent.closed;
  t.equal(closed.code, CloseCode.wrongPhase);
  t.match(closed.reason, /expected register, got results/);
});

/** A RedisRegistry that records how many entries each heartbeat write carried. */
function countingRegistry(calls: number[]): (redis: Redis, keys: Keys) => Registry {
  return (redis, keys) => {
    const inner = new RedisRegistry({ redis, keys, ttlMs: liveness(2000).registryTtlMs });
    return Object.assign(Object.create(inner) as Registry, {
      heartbeat(entries: readonly RegistryEntry[]) {
        calls.push(entries.length);
        return inner.heartbeat(entries);
      },
    });
  };
}

t.test('heartbeats from many sockets share registry writes', async (t) => {
  const calls: number[] = [];
  const hb = await startGateway(r, {
    gatewayId: 'gw-beats',
    config: { heartbeat_interval_ms: 2000 },
    registry: countingRegistry(calls),
  });
  t.teardown(() => hb.stop());
  const agents = Array.from({ length: 10 }, () => new TestAgent(hb.url));
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  await Promise.all(agents.map((a, i) => a.register(`beat-${i}`)));
  const redis = r.client();
  const seen = async () =>
    Promise.all(agents.map((_, i) => redis.hget(hb.keys.agent(`beat-${i}`), 'last_seen')));
  const before = await seen();
  await new Promise((res) => setTimeout(res, 5)); // a later millisecond than the registrations
  // Spread over ~30 ms: each would have been its own pipeline when flushed per event-loop turn.
  for (const a of agents) {
    a.heartbeat();
    await new Promise((res) => setTimeout(res, 3));
  }
  await eventually(
    async () => calls.reduce((a, b) => a + b, 0),
    (total) => total >= 10,
  );
  t.ok(calls.length < 10, `10 heartbeats in ${calls.length} registry write(s): ${JSON.stringify(calls)}`);
  const after = await seen();
  for (const [i, v] of after.entries()) t.ok(Number(v) > Number(before[i]), `beat-${i}: last_seen renewed`);
});

t.test('a drain discards heartbeats still waiting: no entry outlives its socket', async (t) => {
  const calls: number[] = [];
  const hb = await startGateway(r, {
    gatewayId: 'gw-beats-drain',
    config: { heartbeat_interval_ms: 2000 },
    registry: countingRegistry(calls),
  });
  const agent = new TestAgent(hb.url);
  t.teardown(() => agent.close());
  await agent.register('beat-drain');
  const redis = r.client();
  agent.heartbeat();
  // Wait until the gateway has read it (the flush timer is 200 ms away), then drain.
  await new Promise((res) => setTimeout(res, 50));
  await hb.stop();
  t.equal((await agent.closed).code, CloseCode.goingAway);
  t.equal(await redis.exists(hb.keys.agent('beat-drain')), 0, 'deregistered');
  await new Promise((res) => setTimeout(res, 300));
  t.equal(await redis.exists(hb.keys.agent('beat-drain')), 0, 'not renewed or rebuilt afterwards');
  t.same(calls, [], 'the closed socket’s heartbeat was never written');
});
