/**
 * Traffic through a gateway: instructions in (publish → run), undeliverable reported as a results
 * job, results out as BullMQ jobs acked only after enqueue, output to pub/sub + replay buffer, a
 * frozen agent disconnected, and behaviour across a Redis outage (no ack, re-subscribe, rebuild).
 */
import { once } from 'node:events';
import { Queue } from 'bullmq';
import t from 'tap';
import { encodeInboxRecord } from '../shared/inbox-record.js';
import { jobId, QUEUE_NAMES } from '../shared/jobs/options.js';
import { CloseCode, type TaskResultMessage } from '../shared/protocol.js';
import { opaqueId } from '../shared/redact.js';
import { sendToGateway } from '../store/inbox/gateway-inbox.js';
import { publishInstruction } from '../store/inbox/publish-instruction.js';
import type { OutputRecord } from '../store/output/output.js';
import { startRedis } from '../testkit/redis.js';
import { eventually, issued, runMessage, startGateway, TestAgent } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const gw = await startGateway(r, {
  gatewayId: 'gw-d',
  limits: { enqueueTimeoutMs: 500, outputBufferLines: 5, maxBackpressureBytes: 256 * 1024 },
});
t.teardown(() => gw.stop());
const redis = r.client();
const results = new Queue(QUEUE_NAMES.results, {
  connection: r.client(),
  prefix: gw.keys.bullPrefix(QUEUE_NAMES.results),
});
results.on('error', () => {});
t.teardown(() => results.close());

type Item = { agent: string; session_id: string; received_at: string; message: Record<string, unknown> };

/** Every forwarded message in the results queue with the batched job that carries it. */
async function queuedItems(): Promise<Array<{ gateway_id: string; item: Item }>> {
  const jobs = await results.getJobs(['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed']);
  return jobs.flatMap((j) =>
    j.data.kind === 'results'
      ? (j.data.items as Item[]).map((item) => ({ gateway_id: j.data.gateway_id as string, item }))
      : [],
  );
}

async function queuedResult(resultId: string) {
  return (await queuedItems()).filter((q) => q.item.message.result_id === resultId);
}

/** A run whose command is `padding` bytes long. */
const run = (id: string, padding = 0) => runMessage(id, 'x'.repeat(padding));

/** The instruction each agent's results name: issued to it. */
const i1 = (agent: string) => issued(agent, 'i-1');

const taskResult = (resultId: string, agent = 'res-01'): TaskResultMessage => ({
  type: 'task_result',
  result_id: resultId,
  instruction_id: i1(agent),
  execution_id: `${i1(agent)}.0`,
  task: 'deploy',
  mode: 'apply',
  outcome: 'applied',
  started_at: '2025-01-01T00:00:00Z',
  finished_at: '2025-01-01T00:00:01Z',
  duration_ms: 1000,
  steps: [],
});

t.test('publishInstruction reaches the agent as a run message', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  const reg = await agent.register('run-01');
  const outcome = await publishInstruction(redis, gw.keys, 'run-01', run('i-100'));
  t.same(outcome, { status: 'published', gateway_id: 'gw-d', session_id: reg.session_id });
  const got = await agent.next('run');
  t.same(got, run('i-100'));
});

t.test('publishInstruction for an agent nobody holds is undeliverable at once', async (t) => {
  const outcome = await publishInstruction(redis, gw.keys, 'nobody', run('i-101'));
  t.same(outcome, { status: 'undeliverable', reason: 'agent not connected' });
  const stale = await publishInstruction(
    redis,
    gw.keys,
    {
      name: 'x',
      labels: {},
      gateway_id: 'gw-gone',
      session_id: 's',
      connected_at: 0,
      running: [],
      last_seen: 0,
      agent_version: '1',
      executors: [],
    },
    run('i-102'),
  );
  t.same(stale, { status: 'undeliverable', reason: 'gateway gw-gone is not listening' }, 'no such gateway');
});

t.test('an instruction the gateway cannot deliver becomes an undeliverable results job', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('moved-01');
  const entry = encodeInboxRecord({
    kind: 'instruction',
    agent: 'ghost-01',
    session_id: null,
    message: run('i-200'),
  });
  const reported = once(gw.gateway.events, 'instruction:undeliverable');
  t.ok(await sendToGateway(redis, gw.keys, 'gw-d', entry));
  await reported;
  const job = await eventually(
    () => results.getJob(jobId('undeliverable', opaqueId('i-200'))),
    (j) => j !== undefined,
  );
  t.same(job?.data, {
    kind: 'undeliverable',
    agent: 'ghost-01',
    instruction_id: 'i-200',
    reason: 'agent not connected to gateway gw-d',
  });
  // A held agent but an older session: also undeliverable, never sent to the new session.
  const old = encodeInboxRecord({
    kind: 'instruction',
    agent: 'moved-01',
    session_id: 'old-session',
    message: run('i-201'),
  });
  const again = once(gw.gateway.events, 'instruction:undeliverable');
  await sendToGateway(redis, gw.keys, 'gw-d', old);
  t.match((await again)[0], { instruction_id: 'i-201', reason: 'session replaced' });
});

t.test('a result is a BullMQ job before its ack arrives', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  const reg = await agent.register('res-01');
  const ids = ['res:01:a', 'res-01-b', '12345'];
  for (const id of ids) agent.send(taskResult(id));
  agent.send({ type: 'instruction_receipt', instruction_id: i1('res-01'), accepted: true, reason: null });
  const acked: string[] = [];
  while (acked.length < ids.length) {
    const ack = await agent.next('result_ack');
    // Read the queue the moment the ack arrives: every acked result must already be there.
    for (const id of ack.result_ids) {
      const found = await queuedResult(id);
      t.equal(found.length, 1, `job for ${id} exists when acked`);
      t.match(found[0], {
        gateway_id: 'gw-d',
        item: {
          agent: 'res-01',
          session_id: reg.session_id,
          message: { type: 'task_result', result_id: id },
        },
      });
      acked.push(id);
    }
  }
  t.same(acked.sort(), [...ids].sort());
  const receipt = await eventually(
    async () =>
      (await queuedItems()).find(
        (q) =>
          q.item.message.type === 'instruction_receipt' && q.item.message.instruction_id === i1('res-01'),
      ),
    (j) => j !== undefined,
  );
  t.match(receipt?.item.message, { type: 'instruction_receipt', accepted: true });
  // Re-sending an acked result (after a reconnect) is acked again without a second job.
  agent.send(taskResult('res-01-b'));
  t.same((await agent.next('result_ack')).result_ids, ['res-01-b']);
  t.equal((await queuedResult('res-01-b')).length, 1);
});

t.test('output lines are published and kept in a capped replay buffer', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('out-01');
  // Output is taken only for an execution live on this socket: a run carrying it went out here.
  const instruction = issued('out-01', 'i-out');
  const e1 = `${instruction}.0`;
  await publishInstruction(redis, gw.keys, 'out-01', run(instruction));
  await agent.next('run');
  const watcher = r.client().duplicate();
  t.teardown(() => watcher.disconnect());
  await watcher.subscribe(gw.keys.outputChannel(e1));
  const received: OutputRecord[] = [];
  const allIn = new Promise<void>((resolve) => {
    watcher.on('message', (_ch: string, text: string) => {
      received.push(JSON.parse(text) as OutputRecord);
      if (received.length === 8) resolve();
    });
  });
  for (let i = 0; i < 8; i++) {
    agent.send({
      type: 'output',
      execution_id: e1,
      task: 'deploy',
      step: 'one',
      phase: 'apply',
      stream: 'stdout',
      line: `line ${i}`,
    });
  }
  await allIn;
  t.same(
    received.map((x) => x.line),
    [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `line ${i}`),
  );
  t.match(received[0], { agent: 'out-01', execution_id: e1, task: 'deploy', stream: 'stdout' });
  const buffered = await redis.lrange(gw.keys.outputBuffer(e1), 0, -1);
  t.same(
    buffered.map((b) => (JSON.parse(b) as OutputRecord).line),
    ['line 3', 'line 4', 'line 5', 'line 6', 'line 7'],
    'capped to the last 5',
  );
  t.ok((await redis.pttl(gw.keys.outputBuffer(e1))) > 0, 'buffer expires');
  const bullKeys = await redis.keys(`*${QUEUE_NAMES.results}*${e1}*`);
  t.same(bullKeys, [], 'not through BullMQ');
});

t.test('a frozen agent is disconnected, not silently skipped', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('frozen-01');
  // Stop reading: the gateway's sends pile up in the kernel buffers, then in uWS's.
  agent.ws.pause();
  // Still heartbeating (sending needs no reading): under load the flood below can outlast the
  // 3 silent intervals (600 ms) after which the gateway would close it for silence instead,
  // with the same close code, and nothing would be reported as too slow.
  const beating = setInterval(() => agent.heartbeat(), 100);
  t.teardown(() => clearInterval(beating));
  const closed = once(gw.gateway.events, 'agent:closed');
  // Collect every undeliverable report: after the close, later publishes are also refused
  // ("not connected"), and under load one of those can be reported first.
  const reports: { agent: string; reason: string }[] = [];
  const onUndeliverable = (r: { agent: string; reason: string }) => reports.push(r);
  gw.gateway.events.on('instruction:undeliverable', onUndeliverable);
  t.teardown(() => gw.gateway.events.off('instruction:undeliverable', onUndeliverable));
  let published = 0;
  for (let i = 0; i < 400; i++) {
    const outcome = await publishInstruction(redis, gw.keys, 'frozen-01', run(`flood-${i}`, 128 * 1024));
    if (outcome.status !== 'published') break;
    published++;
  }
  const [info] = await closed;
  t.match(info, { agent: 'frozen-01', code: CloseCode.slow });
  t.ok(
    reports.some((r) => r.agent === 'frozen-01' && /too slow/.test(r.reason)),
    'the dropped instruction was reported undeliverable because the agent was too slow',
  );
  t.ok(published < 400, `gateway gave up after ${published} instructions`);
  t.equal(await redis.exists(gw.keys.agent('frozen-01')), 0, 'deregistered');
  clearInterval(beating);
  agent.ws.resume();
  await agent.closed;
});

// Last: kills Redis.
t.test('Redis outage: no ack while enqueue fails; re-subscribe and rebuild after restart', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('outage-01');
  // Like a real agent, keep heartbeating through the outage: kill, the 500 ms enqueue timeout and
  // the restart take longer than the 3 silent intervals (600 ms) after which the gateway hangs up.
  const beating = setInterval(() => agent.heartbeat(), 100);
  t.teardown(() => clearInterval(beating));
  // The registry is empty after the restart: the next heartbeat rebuilds it (possibly one the
  // gateway read during the outage, so listen before the restart).
  const rebuilt = once(gw.gateway.events, 'registry:rebuilt');
  await r.kill();
  const failed = once(gw.gateway.events, 'results:failed');
  agent.send(taskResult('during-outage', 'outage-01'));
  await failed;
  let ackDuringOutage = false;
  const early = agent.next('result_ack').then(() => {
    ackDuringOutage = true;
  });
  await r.restart();
  t.notOk(ackDuringOutage, 'no ack while Redis was down');
  await eventually(
    async () => {
      agent.heartbeat();
      return redis.exists(gw.keys.agent('outage-01'));
    },
    (n) => n === 1,
    10_000,
    100,
  );
  await rebuilt;
  // The agent re-sends what was not acknowledged; now it is enqueued and acked.
  agent.send(taskResult('during-outage', 'outage-01'));
  await early;
  t.ok((await queuedResult('during-outage')).length >= 1, 'enqueued after the outage');
  // The subscriber re-subscribed by itself.
  const outcome = await eventually(
    () => publishInstruction(redis, gw.keys, 'outage-01', run('after-outage')),
    (o) => o.status === 'published',
    10_000,
    100,
  );
  t.equal(outcome.status, 'published');
  t.equal((await agent.next('run')).instruction_id, 'after-outage');
});
