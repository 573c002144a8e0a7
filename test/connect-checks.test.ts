/**
 * Connect checks, coalesced (gateway/connect-checks.ts), on a real Redis with the real BullMQ
 * reconcile queue: agents asked for within one window leave as one `agents` job (each name once),
 * a full job leaves at once, a failed enqueue answers false, and through a real gateway an agent
 * whose connect check cannot be enqueued is told to come back (1013) rather than left unchecked.
 */
import { Queue } from 'bullmq';
import t from 'tap';
import { CONNECT_CHECK_WINDOW_MS, ConnectChecks } from '../gateway/connect-checks.js';
import { TRY_AGAIN_LATER } from '../gateway/registration.js';
import type { JobQueue } from '../gateway/result-forwarder.js';
import { JOB_NAMES, QUEUE_NAMES } from '../shared/jobs/options.js';
import { ReconcileAgentsJob } from '../shared/jobs/payloads.js';
import { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { startRedis } from '../testkit/redis.js';
import { startGateway, TestAgent } from './helpers/gateway.js';

const logger = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const r = await startRedis();
t.teardown(() => r.stop());
const keys = new Keys(r.prefix);
const reconcile = new Queue(QUEUE_NAMES.reconcile, {
  connection: r.client(),
  prefix: keys.bullPrefix(QUEUE_NAMES.reconcile),
});
reconcile.on('error', () => {});
t.teardown(() => reconcile.close());

async function jobsHolding(names: string[]) {
  const jobs = await reconcile.getJobs(['waiting', 'prioritized', 'delayed']);
  return jobs.filter((j) => (j.data.agents as string[] | undefined)?.some((a) => names.includes(a)));
}

/** A queue port whose every add fails, as during a Redis outage. */
function failingQueue(): JobQueue {
  return {
    add: () => Promise.reject(new Error('redis down (test)')),
    addBulk: () => Promise.reject(new Error('redis down (test)')),
  };
}

t.test('the default window is short: a connect check waits at most a fifth of a second', async (t) => {
  t.equal(CONNECT_CHECK_WINDOW_MS, 200);
});

t.test('agents asked for within one window leave as one agents job, each once', async (t) => {
  const checks = new ConnectChecks({ queue: reconcile, windowMs: 5_000, logger });
  const names = ['w-a', 'w-b', 'w-c'];
  const pending = [...names, 'w-a'].map((n) => checks.request(n));
  t.same(await jobsHolding(names), [], 'nothing before the window ends');
  await checks.flushNow();
  t.same(await Promise.all(pending), [true, true, true, true]);
  const jobs = await jobsHolding(names);
  t.equal(jobs.length, 1);
  t.equal(jobs[0]?.name, JOB_NAMES.agents);
  t.same(jobs[0]?.data, { agents: names, trigger: 'connect', run_id: null, tasks: null });
  t.ok(ReconcileAgentsJob.safeParse(jobs[0]?.data).success, 'the reconciler accepts it');
});

t.test('the window closes by itself', async (t) => {
  const checks = new ConnectChecks({ queue: reconcile, windowMs: 50, logger });
  const started = Date.now();
  t.same(await Promise.all([checks.request('t-a'), checks.request('t-b')]), [true, true]);
  t.ok(Date.now() - started >= 45, 'waited for the window');
  t.equal((await jobsHolding(['t-a', 't-b'])).length, 1);
});

t.test('a full job leaves at once, without waiting for the window', async (t) => {
  const checks = new ConnectChecks({ queue: reconcile, windowMs: 60_000, maxAgents: 2, logger });
  const names = ['f-a', 'f-b', 'f-c', 'f-d', 'f-e'];
  const first = names.slice(0, 4).map((n) => checks.request(n));
  t.same(await Promise.all(first), [true, true, true, true], 'two full jobs enqueued without the window');
  const last = checks.request('f-e');
  await checks.flushNow();
  t.equal(await last, true);
  const jobs = await jobsHolding(names);
  t.same(jobs.map((j) => (j.data.agents as string[]).length).sort(), [1, 2, 2]);
});

t.test('a job is never larger than the agents job schema allows', async (t) => {
  const checks = new ConnectChecks({ queue: reconcile, windowMs: 60_000, maxAgents: 10_000, logger });
  const names = Array.from({ length: 501 }, (_, i) => `big-${i}`);
  const done = names.map((n) => checks.request(n));
  await checks.flushNow();
  t.ok((await Promise.all(done)).every(Boolean));
  const sizes = (await jobsHolding(names))
    .map((j) => (j.data.agents as string[]).length)
    .sort((a, b) => a - b);
  t.same(sizes, [1, 500]);
});

t.test('an enqueue that fails answers false for every agent of the job', async (t) => {
  const checks = new ConnectChecks({ queue: failingQueue(), windowMs: 10, logger });
  t.same(await Promise.all([checks.request('x-a'), checks.request('x-b')]), [false, false]);
});

t.test('through a gateway: an agent whose connect check cannot be enqueued is told to retry', async (t) => {
  const results = new Queue(QUEUE_NAMES.results, {
    connection: r.client(),
    prefix: keys.bullPrefix(QUEUE_NAMES.results),
  });
  results.on('error', () => {});
  t.teardown(() => results.close());
  const gw = await startGateway(r, {
    gatewayId: 'gw-connect-failing',
    limits: { connectCheckWindowMs: 20 },
    queues: { results, reconcile: failingQueue() },
  });
  t.teardown(() => gw.stop());
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('unchecked-01');
  const closed = await agent.closed;
  t.equal(closed.code, TRY_AGAIN_LATER);
  t.match(closed.reason, /cannot schedule reconcile/);
});
