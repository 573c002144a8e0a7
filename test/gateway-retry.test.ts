/**
 * A full result backlog through a real gateway and Redis: the refused results of a frame are named
 * in one `result_retry` (1 s while enqueues succeed, 10 s while they fail), re-sent results are
 * acked and enqueued, and the refusals are counted and logged without flooding the log.
 */
import { once } from 'node:events';
import { Queue } from 'bullmq';
import pino from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { GatewayMetrics } from '../gateway/gateway-metrics.js';
import type { JobQueue } from '../gateway/result-forwarder.js';
import {
  RETRY_AFTER_BUSY_MS,
  RETRY_AFTER_FAILING_MS,
  RefusalLog,
  refusedResultIds,
  retryAfterMs,
} from '../gateway/result-retry.js';
import type { JobSpec } from '../shared/jobs/options.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { Keys } from '../shared/keys.js';
import type { ResultsItem } from '../shared/protocol.js';
import { startRedis } from '../testkit/redis.js';
import { issued, receiptMessage, startGateway, TestAgent, taskResultMessage } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const keys = new Keys(r.prefix);
const results = new Queue(QUEUE_NAMES.results, {
  connection: r.client(),
  prefix: keys.bullPrefix(QUEUE_NAMES.results),
});
results.on('error', () => {});
t.teardown(() => results.close());

type Item = { agent: string; session_id: string; received_at: string; message: Record<string, unknown> };

async function queuedIds(agent: string): Promise<string[]> {
  const jobs = await results.getJobs(['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed']);
  return jobs
    .flatMap((j) => (j.data.kind === 'results' ? (j.data.items as Item[]) : []))
    .filter((i) => i.agent === agent)
    .map((i) => String(i.message.result_id ?? i.message.type));
}

const receipt = receiptMessage;
/** Results for each test's agent: `retry-*` share the one instruction name, issued to each. */
let retryAgent = 'retry-01';
const taskResult = (resultId: string) => taskResultMessage(issued(retryAgent, 'i-retry'), resultId);

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Reads result_acks until these ids were all acked; returns them in ack order. */
async function acked(agent: TestAgent, expected: readonly string[]): Promise<string[]> {
  const got: string[] = [];
  while (got.length < expected.length) got.push(...(await agent.next('result_ack')).result_ids);
  return got;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

t.test('pure: refused ids skip receipts; the delay follows enqueue health', async (t) => {
  const messages: ResultsItem[] = [taskResult('a'), receipt('i'), taskResult('b'), taskResult('c')];
  t.same(refusedResultIds(messages, 0), ['a', 'b', 'c']);
  t.same(refusedResultIds(messages, 1), ['b', 'c'], 'a refused receipt is not named');
  t.same(refusedResultIds(messages, 4), []);
  t.equal(retryAfterMs(false), RETRY_AFTER_BUSY_MS);
  t.equal(RETRY_AFTER_BUSY_MS, 1000);
  t.equal(retryAfterMs(true), RETRY_AFTER_FAILING_MS);
  t.equal(RETRY_AFTER_FAILING_MS, 10_000);
});

t.test('RefusalLog: at once, then at most once per interval with the counts since', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const log = new RefusalLog(logger, 100);
  log.refused(3, 1, 1000);
  log.refused(2, 0, 1000);
  log.refused(4, 0, 10_000);
  t.equal(lines.length, 1, 'one line for a burst');
  t.match(lines[0], { level: 40, count: 3, receipts: 1, retry_after_ms: 1000 });
  await new Promise((res) => setTimeout(res, 150));
  t.equal(lines.length, 2, 'the rest at the end of the interval');
  t.match(lines[1], { count: 6, receipts: 0, retry_after_ms: 10_000 });
  await new Promise((res) => setTimeout(res, 250));
  t.equal(lines.length, 2, 'quiet: nothing more');
  log.refused(1, 0, 1000);
  t.equal(lines.length, 3, 'a later refusal is logged at once again');
  t.match(lines[2], { count: 1 });
});

t.test('backlog full: result_retry names the refused results; re-sent, they are acked', async (t) => {
  const promRegistry = new Registry();
  const metrics = new GatewayMetrics(promRegistry);
  const gw = await startGateway(r, { gatewayId: 'gw-retry', limits: { maxPendingResults: 5 }, metrics });
  t.teardown(() => gw.stop());
  metrics.watch(gw.gateway);
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  retryAgent = 'retry-01';
  await agent.register('retry-01', {}, ['result_retry']);

  const all = ids('rt', 7);
  const refusedEvent = once(gw.gateway.events, 'results:refused');
  // Five fit; the receipt and the last two results do not.
  agent.send({
    type: 'results',
    messages: [
      ...all.slice(0, 5).map(taskResult),
      receipt(issued(retryAgent, 'i-retry')),
      ...all.slice(5).map(taskResult),
    ],
  });
  const retry = await agent.next('result_retry');
  t.same(retry, { type: 'result_retry', result_ids: all.slice(5), retry_after_ms: 1000 });
  t.same(await refusedEvent, [{ count: 2, receipts: 1, retry_after_ms: 1000 }]);
  t.same((await acked(agent, all.slice(0, 5))).sort(), all.slice(0, 5), 'the taken ones are acked');
  t.same(await queuedIds('retry-01'), all.slice(0, 5), 'only the taken ones were enqueued');

  // The agent comes back as told: now there is room.
  agent.send({ type: 'results', messages: all.slice(5).map(taskResult) });
  t.same((await acked(agent, all.slice(5))).sort(), all.slice(5));
  t.same((await queuedIds('retry-01')).sort(), all, 'every result enqueued, once');

  t.equal(await metricValue(promRegistry, 'fluke_gateway_results_refused_total'), 2);
  t.equal(await metricValue(promRegistry, 'fluke_gateway_messages_sent_total', { type: 'result_retry' }), 1);
  const warnings = gw.logs.filter(
    (l) => l.msg === 'results backlog full: refused results, agents told to retry',
  );
  t.equal(warnings.length, 1, 'logged once');
  t.match(warnings[0], { level: 40, count: 2, receipts: 1, retry_after_ms: 1000 });
});

t.test('an agent that did not advertise result_retry gets none: no ack, it re-sends in 30 s', async (t) => {
  const gw = await startGateway(r, { gatewayId: 'gw-retry-old', limits: { maxPendingResults: 2 } });
  t.teardown(() => gw.stop());
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  retryAgent = 'retry-old';
  await agent.register('retry-old');
  const all = ids('old', 4);
  let retried = false;
  void agent.next('result_retry').then(() => {
    retried = true;
  });
  const refusedEvent = once(gw.gateway.events, 'results:refused');
  agent.send({ type: 'results', messages: all.map(taskResult) });
  t.same(await refusedEvent, [{ count: 2, receipts: 0, retry_after_ms: 1000 }], 'still counted');
  t.same((await acked(agent, all.slice(0, 2))).sort(), all.slice(0, 2));
  // A heartbeat's round trip later, nothing else came: no result_retry (the old agent would have
  // closed its socket on a type it does not know), no ack for the refused two.
  agent.heartbeat();
  await new Promise((res) => setTimeout(res, 300));
  t.notOk(retried, 'no result_retry for an agent that did not ask for it');
  t.same((await queuedIds('retry-old')).sort(), all.slice(0, 2), 'only the taken ones were enqueued');
});

/** The real results queue, with a switch that makes every addBulk fail as a Redis outage would. */
function switchableQueue(inner: Queue): JobQueue & { fail: boolean } {
  return {
    fail: false,
    add: (name, data, opts) => inner.add(name, data, opts),
    addBulk(jobs: Array<JobSpec<unknown>>) {
      if (this.fail) return Promise.reject(new Error('redis down (test)'));
      return inner.addBulk(jobs);
    },
  };
}

t.test('while enqueues fail the agent is told to come back later; 1 s again once they recover', async (t) => {
  const reconcile = new Queue(QUEUE_NAMES.reconcile, {
    connection: r.client(),
    prefix: keys.bullPrefix(QUEUE_NAMES.reconcile),
  });
  reconcile.on('error', () => {});
  t.teardown(() => reconcile.close());
  const queue = switchableQueue(results);
  const gw = await startGateway(r, {
    gatewayId: 'gw-retry-failing',
    limits: { maxPendingResults: 5 },
    queues: { results: queue, reconcile },
  });
  t.teardown(() => gw.stop());
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  retryAgent = 'retry-02';
  await agent.register('retry-02', {}, ['result_retry']);
  const events = gw.gateway.events;

  const send = (prefix: string) => {
    const frame = ids(prefix, 7);
    agent.send({ type: 'results', messages: frame.map(taskResult) });
    return frame;
  };
  const expectRetry = async (t: Test, frame: string[], after: number, why: string) =>
    t.same(
      await agent.next('result_retry'),
      { type: 'result_retry', result_ids: frame.slice(5), retry_after_ms: after },
      why,
    );

  queue.fail = true;
  let failed = once(events, 'results:failed');
  agent.send(taskResult('first'));
  await failed;

  failed = once(events, 'results:failed');
  await expectRetry(t, send('down'), 10_000, 'enqueues failing: 10 s');
  await failed;

  // Redis is back, but nothing has been enqueued yet to show it.
  queue.fail = false;
  const enqueued = once(events, 'results:enqueued');
  const frame = send('back');
  await expectRetry(t, frame, 10_000, 'still failing as far as the gateway knows');
  await enqueued;
  t.same((await acked(agent, frame.slice(0, 5))).sort(), frame.slice(0, 5));

  await expectRetry(t, send('healthy'), 1000, 'recovered: 1 s');
  t.same(
    gw.logs.filter((l) => l.msg === 'results backlog full: refused results, agents told to retry').length,
    1,
    'three refusals within the interval, one warning',
  );
});
