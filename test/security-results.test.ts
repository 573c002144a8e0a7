/**
 * Security: result integrity. Receipts, results and live output are taken only for the
 * instructions and executions issued to the sending agent; everything else is dropped before
 * Redis and counted by reason. Real gateway, real Redis, raw `ws` agents; the forgery finding
 * also on the whole system (gateway and reconciler in one process).
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { GatewayMetrics } from '../gateway/gateway-metrics.js';
import { instructionIds } from '../reconciler/instruction-ids.js';
import { instructionBelongsTo } from '../shared/identity/instruction-tag.js';
import { resultsJob } from '../shared/jobs/builders.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import type { ResultItem } from '../shared/jobs/payloads.js';
import { Keys } from '../shared/keys.js';
import type {
  CheckResultMessage,
  OutputMessage,
  ResultsItem,
  TaskResultMessage,
} from '../shared/protocol.js';
import { publishInstruction } from '../store/inbox/publish-instruction.js';
import { startRedis } from '../testkit/redis.js';
import { AGENT_TOKEN, API_TOKEN, startSystem, waitFor } from '../testkit/system.js';
import {
  eventually,
  issued,
  receiptMessage,
  registerMessage,
  runMessage,
  startGateway,
  stepResultMessage,
  TestAgent,
  taskResultMessage,
} from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());

const SCOPED = 'scoped-narrow-token-0123456789';
const promRegistry = new Registry();
const metrics = new GatewayMetrics(promRegistry);
const gw = await startGateway(r, {
  gatewayId: 'gw-sec',
  metrics,
  scoped: [{ id: 'narrow', token: SCOPED, allowed_labels: {}, name_pattern: 'evil-*', require_labels: true }],
  // 100 B/s after a 2,000-byte burst: a third 1,000-byte line needs 10 s of quiet.
  limits: { outputBytesPerSecond: 100, outputBurstBytes: 2000 },
});
t.teardown(() => gw.stop());
metrics.watch(gw.gateway);
const redis = r.client();
t.teardown(() => redis.disconnect());

async function refusals(reason: string): Promise<number> {
  const metric = promRegistry.getSingleMetric('fluke_gateway_agent_refusals_total');
  if (!metric) throw new Error('no refusals metric');
  const { values } = await metric.get();
  return values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

const refusedBy = (reason: string, atLeast: number) =>
  eventually(
    () => refusals(reason),
    (n) => n >= atLeast,
    20_000,
  );

/** Every command Redis runs from now on, as text (MONITOR). */
async function monitorRedis(t: Test): Promise<string[]> {
  const lines: string[] = [];
  const mon = await r.client().monitor();
  mon.on('monitor', (_time: string, args: string[]) => {
    lines.push(args.join(' '));
  });
  t.teardown(() => mon.disconnect());
  return lines;
}

const output = (execution: string, line: string): OutputMessage => ({
  type: 'output',
  execution_id: execution,
  task: 'deploy',
  step: 'one',
  phase: 'apply',
  stream: 'stdout',
  line,
});

const checkResult = (instructionId: string, execution: string, resultId: string): CheckResultMessage => ({
  type: 'check_result',
  result_id: resultId,
  instruction_id: instructionId,
  execution_id: execution,
  task: 'deploy',
  step: 'one',
  satisfied: false,
  exit_code: 1,
  duration_ms: 1,
  output_tail: '',
});

/** Reads result_acks until every id came back. */
async function acked(agent: TestAgent, ids: readonly string[]): Promise<string[]> {
  const got: string[] = [];
  while (!ids.every((id) => got.includes(id))) got.push(...(await agent.next('result_ack')).result_ids);
  return got;
}

/** Heartbeats every 100 ms (listing `running`) until the test ends: the gateway hangs up on silence. */
function keepAlive(t: Test, agent: TestAgent, running: () => string[] = () => []): void {
  const timer = setInterval(() => {
    if (agent.ws.readyState === agent.ws.OPEN) agent.send({ type: 'heartbeat', running: running() });
  }, 100);
  t.teardown(() => clearInterval(timer));
}

/** An agent registered with `running` instruction ids (TestAgent.register sends none). */
async function registerRunning(agent: TestAgent, name: string, running: string[]): Promise<void> {
  await agent.opened;
  agent.send({ ...registerMessage(name), running });
  await agent.next('registered');
}

/** A raw agent registered as `name`, heartbeating (listing `running`) and closed when the test ends. */
async function connected(
  t: Test,
  name: string,
  o: { url?: string; token?: string; labels?: Record<string, string>; running?: () => string[] } = {},
): Promise<TestAgent> {
  const agent = new TestAgent(o.url ?? gw.url, o.token ? { token: o.token } : {});
  t.teardown(() => agent.close());
  await agent.register(name, o.labels);
  keepAlive(t, agent, o.running);
  return agent;
}

/** Publishes a run of `instruction` to `name` and waits for `agent` (connected as `name`) to get it. */
async function deliver(agent: TestAgent, name: string, instruction: string): Promise<void> {
  await publishInstruction(redis, gw.keys, name, runMessage(instruction));
  await agent.next('run');
}

async function queuedResultIds(): Promise<string[]> {
  const results = new Queue(QUEUE_NAMES.results, {
    connection: redis,
    prefix: gw.keys.bullPrefix(QUEUE_NAMES.results),
  });
  try {
    const jobs = await results.getJobs([
      'waiting',
      'prioritized',
      'active',
      'delayed',
      'completed',
      'failed',
    ]);
    return jobs.flatMap((j) =>
      j.data.kind === 'results'
        ? (j.data.items as ResultItem[]).map((i) =>
            i.message.type === 'instruction_receipt'
              ? `receipt:${i.message.instruction_id}`
              : i.message.result_id,
          )
        : [],
    );
  } finally {
    await results.close();
  }
}

t.test('cross-agent forgery: another agent’s instruction is refused at the gateway', async (t) => {
  const owner = await connected(t, 'own-01');
  const forger = await connected(t, 'evil-01', { token: SCOPED });
  const instruction = issued('own-01', 'forgery');
  await deliver(owner, 'own-01', instruction);
  const execution = `${instruction}.0`;
  const before = await refusals('foreign_instruction');
  const monitor = await monitorRedis(t);

  const forged: ResultsItem[] = [
    { ...taskResultMessage(instruction, 'forged-1'), execution_id: execution },
    checkResult(instruction, execution, 'forged-2'),
    receiptMessage(instruction),
    { ...stepResultMessage(instruction, 'forged-3'), execution_id: execution },
  ];
  for (const m of forged) forger.send(m);
  forger.send({
    type: 'results',
    messages: [
      { ...taskResultMessage(instruction, 'forged-4'), execution_id: execution },
      checkResult(instruction, execution, 'forged-5'),
      receiptMessage(instruction),
    ],
  });
  // Acked all the same: an agent that is confused rather than hostile stops re-sending.
  t.same((await acked(forger, ['forged-1', 'forged-2', 'forged-3', 'forged-4', 'forged-5'])).sort(), [
    'forged-1',
    'forged-2',
    'forged-3',
    'forged-4',
    'forged-5',
  ]);
  t.equal(await refusedBy('foreign_instruction', before + 7), before + 7, 'each item counted');

  // The owner's genuine result, sent afterwards, goes through.
  owner.send({ ...taskResultMessage(instruction, 'genuine-1'), execution_id: execution });
  await acked(owner, ['genuine-1']);
  await eventually(async () => monitor.some((l) => l.includes('genuine-1')), Boolean, 20_000);
  t.notOk(
    monitor.some((l) => /forged-\d/.test(l)),
    'no forged result reached Redis',
  );
  const queued = await queuedResultIds();
  t.ok(queued.includes('genuine-1'));
  t.notOk(queued.some((id) => id.startsWith('forged-') || id === `receipt:${instruction}`));
  t.match(
    gw.logs.find((l) => l.msg === 'dropped agent messages not issued to it' && l.agent === 'evil-01'),
    { level: 40, reason: 'foreign_instruction', remote: /./ },
    'logged at warn with the agent and its address',
  );
});

t.test('invented instruction and execution ids are dropped before Redis', async (t) => {
  const agent = await connected(t, 'inv-01');
  const mine = issued('inv-01', 'mine');
  const alsoMine = issued('inv-01', 'also-mine');
  const lookalike = `i${randomBytes(24).toString('base64url')}`;
  const before = await refusals('foreign_instruction');
  const monitor = await monitorRedis(t);
  const invented: ResultsItem[] = [
    receiptMessage('i1'),
    taskResultMessage('i1', 'inv-1'),
    { ...taskResultMessage(lookalike, 'inv-2'), execution_id: `${lookalike}.0` },
    // The agent's own instruction, with an execution of another of its instructions.
    { ...taskResultMessage(mine, 'inv-3'), execution_id: `${alsoMine}.0` },
    { ...taskResultMessage(mine, 'inv-4'), execution_id: 'made-up' },
    checkResult(mine, `${mine}-0`, 'inv-5'),
  ];
  for (const m of invented) agent.send(m);
  agent.send({ type: 'results', messages: [receiptMessage(lookalike), taskResultMessage('i2', 'inv-6')] });
  const forgedIds = ['inv-1', 'inv-2', 'inv-3', 'inv-4', 'inv-5', 'inv-6'];
  await acked(agent, forgedIds);
  t.equal(await refusedBy('foreign_instruction', before + 8), before + 8);
  // A genuine result behind them on the same socket: once it is in Redis, the others had their turn.
  agent.send({ ...taskResultMessage(mine, 'inv-marker'), execution_id: `${mine}.0` });
  await acked(agent, ['inv-marker']);
  await eventually(async () => monitor.some((l) => l.includes('inv-marker')), Boolean, 20_000);
  const leaked = monitor.filter(
    (l) => forgedIds.some((id) => l.includes(`"${id}"`)) || l.includes(lookalike) || l.includes('"i1"'),
  );
  t.same(leaked, [], 'no Redis command carried an invented id');
});

t.test('output for an invented or another agent’s execution is not stored', async (t) => {
  const owner = await connected(t, 'out-own');
  const other = await connected(t, 'evil-out', { token: SCOPED });
  const instruction = issued('out-own', 'out');
  const execution = `${instruction}.0`;
  await deliver(owner, 'out-own', instruction);
  const notLive = await refusals('output_not_live');

  const othersOwn = `${issued('evil-out', 'never-sent')}.0`;
  other.send(output(execution, 'forged line'));
  other.send(output('e-1', 'invented'));
  other.send(output(othersOwn, 'issued but never sent'));
  await refusedBy('output_not_live', notLive + 3);
  owner.send(output(execution, 'genuine line'));
  await eventually(
    () => redis.llen(gw.keys.outputBuffer(execution)),
    (n) => n >= 1,
    20_000,
  );
  const lines = await redis.lrange(gw.keys.outputBuffer(execution), 0, -1);
  t.same(
    lines.map((l) => (JSON.parse(l) as { line: string; agent: string }).line),
    ['genuine line'],
    'only the owner’s line',
  );
  t.equal(await redis.exists(gw.keys.outputBuffer('e-1')), 0, 'no buffer for an invented execution');
  t.equal(await redis.exists(gw.keys.outputBuffer(othersOwn)), 0, 'none for an execution never sent');

  // The execution's task result ends it: later output is not live any more.
  owner.send({ ...taskResultMessage(instruction, 'out-done'), execution_id: execution });
  await acked(owner, ['out-done']);
  owner.send(output(execution, 'after the end'));
  await refusedBy('output_not_live', notLive + 4);
});

t.test(
  'output keeps flowing after a reconnect for the instructions the agent lists as running',
  async (t) => {
    const first = new TestAgent(gw.url);
    await first.register('out-back');
    const instruction = issued('out-back', 'long');
    await deliver(first, 'out-back', instruction);
    await first.close();
    const again = new TestAgent(gw.url);
    t.teardown(() => again.close());
    await registerRunning(again, 'out-back', [instruction]);
    keepAlive(t, again, () => [instruction]);
    const notLive = await refusals('output_not_live');
    const notListed = `${issued('out-back', 'not-listed')}.0`;
    again.send(output(notListed, 'not running'));
    await refusedBy('output_not_live', notLive + 1);
    again.send(output(`${instruction}.0`, 'still running'));
    await eventually(
      () => redis.llen(gw.keys.outputBuffer(`${instruction}.0`)),
      (n) => n === 1,
      20_000,
    );
    t.equal(await redis.exists(gw.keys.outputBuffer(notListed)), 0);
  },
);

t.test('output beyond the per-agent byte rate is dropped and counted', async (t) => {
  const agent = await connected(t, 'rate-01');
  const instruction = issued('rate-01', 'flood');
  const execution = `${instruction}.0`;
  await deliver(agent, 'rate-01', instruction);
  const before = await refusals('output_rate');
  for (let i = 0; i < 10; i++) agent.send(output(execution, `${i}`.padEnd(1000, 'x')));
  t.ok((await refusedBy('output_rate', before + 8)) >= before + 8);
  await eventually(
    () => redis.llen(gw.keys.outputBuffer(execution)),
    (n) => n >= 2,
    20_000,
  );
  t.equal(await redis.llen(gw.keys.outputBuffer(execution)), 2, 'the 2,000-byte burst, then nothing');
  t.equal(await refusals('output_rate'), before + 8);
});

t.test('a result re-sent after reconnecting (new session, same agent) is still taken', async (t) => {
  const first = new TestAgent(gw.url);
  const reg1 = await first.register('resend-01');
  const instruction = issued('resend-01', 'resend');
  await deliver(first, 'resend-01', instruction);
  await first.close();
  const again = new TestAgent(gw.url);
  t.teardown(() => again.close());
  const reg2 = await again.register('resend-01');
  keepAlive(t, again);
  t.not(reg2.session_id, reg1.session_id);
  again.send(receiptMessage(instruction));
  again.send({ ...taskResultMessage(instruction, 'resent-1'), execution_id: `${instruction}.0` });
  await acked(again, ['resent-1']);
  const queued = await eventually(queuedResultIds, (ids) => ids.includes(`receipt:${instruction}`), 20_000);
  t.ok(queued.includes('resent-1'));
});

t.test('ids: unguessable, tagged with their agent, stable across retries of a job', async (t) => {
  const key = randomBytes(32);
  const seen = new Set<string>();
  for (let job = 0; job < 100; job++) {
    const of = instructionIds(key, { id: `${job + 1}`, timestamp: 1_700_000_000_000 });
    for (let i = 0; i < 100; i++) seen.add(of(`agent-${i}`, i));
  }
  t.equal(seen.size, 10_000, '10,000 ids, all distinct');
  const job = { id: '42', timestamp: 1_700_000_000_000 };
  const id = instructionIds(key, job)('web-01', 3);
  t.equal(instructionIds(key, { ...job })('web-01', 3), id, 'the same job retried: the same id');
  t.equal(instructionIds(key, job)('web-01'), instructionIds(key, job)('web-01'));
  t.not(instructionIds(key, job)('web-01', 4), id);
  t.not(instructionIds(key, { ...job, timestamp: job.timestamp + 1 })('web-01', 3), id);
  t.ok(instructionBelongsTo(key, 'web-01', id));
  t.notOk(instructionBelongsTo(key, 'web-02', id));
  t.ok(id.length <= 128 && /^[A-Za-z0-9_-]+$/.test(id), 'safe in Redis keys and job ids');
  const bytes = Buffer.from(id.slice(1), 'base64url');
  let flips = 0;
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const f = Buffer.from(bytes);
    f[bit >> 3] = (f[bit >> 3] as number) ^ (1 << (bit & 7));
    if (!instructionBelongsTo(key, 'web-01', `i${f.toString('base64url')}`)) flips++;
  }
  t.equal(flips, bytes.length * 8, 'every one-bit flip is rejected');
});

t.test('cross-agent forgery on the whole system: nothing recorded for the owner', async (t) => {
  const sys = await startSystem(t, {
    files: {
      'site.fluke.hcl': `
task "site" {
  selector { match_labels = { role = "web" } }
  shell "page" {
    check   = "false"
    command = "true"
  }
}
`,
    },
    serverExtra: `  agent_token "narrow" {
    token        = "${SCOPED}"
    name_pattern = "evil-*"
  }`,
  });
  const keys = new Keys(sys.config.redis.prefix);
  const client = sys.redis.client();
  t.teardown(() => client.disconnect());
  const url = `ws://127.0.0.1:${sys.agentsPort}/agent`;
  let running: string[] = [];
  const owner = await connected(t, 'web-01', {
    url,
    token: AGENT_TOKEN,
    labels: { role: 'web' },
    running: () => running,
  });
  const forger = await connected(t, 'evil-01', { url, token: SCOPED });
  const instruction = await owner.next('run');
  running = [instruction.instruction_id];
  const execution = instruction.tasks[0]?.execution_id as string;
  t.ok(execution.startsWith(`${instruction.instruction_id}.`));

  const result = (resultId: string, outcome: TaskResultMessage['outcome']): TaskResultMessage => ({
    type: 'task_result',
    result_id: resultId,
    instruction_id: instruction.instruction_id,
    execution_id: execution,
    task: 'site',
    mode: 'apply',
    outcome,
    started_at: new Date().toISOString(),
    finished_at: new Date().toISOString(),
    duration_ms: 5,
    steps: [],
  });
  const metricsText = async () =>
    (await fetch(sys.url('/metrics'), { headers: { authorization: `Bearer ${API_TOKEN}` } })).text();
  forger.send({ ...receiptMessage(instruction.instruction_id), accepted: false, reason: 'forged' });
  forger.send(result('sys-forged-1', 'failed'));
  forger.send({ type: 'results', messages: [result('sys-forged-2', 'failed')] });
  await acked(forger, ['sys-forged-1', 'sys-forged-2']);
  await waitFor(
    'the forged items counted',
    metricsText,
    (text) => /fluke_gateway_agent_refusals_total\{reason="foreign_instruction"\} 3\b/.test(text),
    30_000,
  );

  // Past the gateway (a gateway that does not check, or a forged job): the reconciler checks too.
  const results = new Queue(QUEUE_NAMES.results, {
    connection: client,
    prefix: keys.bullPrefix(QUEUE_NAMES.results),
  });
  t.teardown(() => results.close());
  const spec = resultsJob({
    kind: 'results',
    gateway_id: 'forged-gateway',
    items: [
      {
        agent: 'evil-01',
        session_id: 'forged',
        received_at: new Date().toISOString(),
        message: result('sys-forged-3', 'failed'),
      },
    ],
  });
  const job = await results.add(spec.name, spec.data, spec.opts);
  const done = await waitFor(
    'the forged job handled',
    async () => (job.id ? await results.getJob(job.id) : undefined),
    (j) => j?.finishedOn !== undefined,
    30_000,
  );
  t.match(JSON.parse(String(done?.returnvalue)), { foreign_instruction: 1 }, 'dropped by the reconciler');
  await waitFor(
    'the reconciler’s count',
    metricsText,
    (text) => /fluke_results_dropped_total\{reason="foreign_instruction"\} 1\b/.test(text),
    30_000,
  );
  t.same(await client.hgetall(keys.taskStatus('web-01')), {}, 'no status for the owner');
  const events = await sys.get<{ events: Array<{ kind: string; agent?: string }> }>(
    '/api/v1/events?agent=web-01',
  );
  t.notOk(
    events.events.some((e) => e.kind === 'task_run'),
    'no task event for the owner',
  );

  // The owner's genuine result afterwards is recorded.
  owner.send({ ...receiptMessage(instruction.instruction_id) });
  owner.send(result('sys-genuine', 'applied'));
  await acked(owner, ['sys-genuine']);
  const status = await waitFor(
    'the owner’s status',
    () => client.hget(keys.taskStatus('web-01'), 'site'),
    (s) => s !== null,
    30_000,
  );
  t.match(JSON.parse(status as string), { task: 'site', execution_id: execution });
  t.match(JSON.parse(status as string), { outcome: 'applied' }, 'the owner’s result, not a forged one');
});
