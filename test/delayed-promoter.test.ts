/**
 * Due delayed jobs are moved to `wait` without any worker running (reconciler/delayed-promoter.ts):
 * what queue-scaled reconcilers (KEDA watching the wait lists) need to ever see a drift check,
 * deadline or retry. Real Redis, real BullMQ queues, and a gateway-only `startServices`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import t from 'tap';
import { startServices } from '../bin/services.js';
import { parseServerConfig } from '../shared/config/load.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { Keys } from '../shared/keys.js';
import { promoteDue } from '../store/queues/delayed-promoter.js';
import { freePort, startRedis } from '../testkit/redis.js';
import { serverHcl, waitFor } from '../testkit/system.js';

const redis = await startRedis();
t.teardown(() => redis.stop());
const keys = new Keys(redis.prefix);

t.test('promoteDue moves only jobs whose time has come, earliest first', async (t) => {
  const client = redis.client();
  const queue = new Queue('promote-test', { connection: client, prefix: keys.bullPrefix('promote-test') });
  t.teardown(() => queue.close());
  const now = Date.now();
  await queue.add('soon', {}, { delay: 200 });
  await queue.add('later', {}, { delay: 60_000 });
  t.equal(await promoteDue(client, [queue], now), 0, 'nothing is due yet');
  t.equal(await queue.getWaitingCount(), 0);
  t.equal(await promoteDue(client, [queue], now + 1000), 1, 'the due one');
  t.same(
    (await queue.getWaiting()).map((j) => j.name),
    ['soon'],
  );
  t.same(
    (await queue.getDelayed()).map((j) => j.name),
    ['later'],
    'the later one stays delayed',
  );
  t.equal(await promoteDue(client, [queue], now + 1000), 0, 'a second pass finds nothing more');
});

t.test('a gateway with no reconciler anywhere promotes due delayed reconcile jobs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluke-promote-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = await parseServerConfig(
    'server.hcl',
    serverHcl({
      agentsPort: await freePort(),
      httpPort: await freePort(),
      redisUrl: redis.url,
      prefix: redis.prefix,
      repo: '/nonexistent/repo',
      pollInterval: '60s',
      heartbeat: '1s',
      policy: 'remediate',
      alertWebhook: null,
      eventStore: 'redis',
    }),
    {},
  );
  const services = await startServices(config, 'gateway', {
    dataDir: dir,
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => services.close());
  const reconcile = new Queue(QUEUE_NAMES.reconcile, {
    connection: redis.client(),
    prefix: keys.bullPrefix(QUEUE_NAMES.reconcile),
  });
  t.teardown(() => reconcile.close());
  // A drift check delayed to its slot, as the drift tick enqueues it.
  const job = await reconcile.add('agent', { agent: 'web-01' }, { delay: 500 });
  t.equal(await job.getState(), 'delayed');
  const state = await waitFor(
    'promoted',
    () => job.getState(),
    (s) => s === 'waiting',
    10_000,
  );
  t.equal(state, 'waiting', 'in the wait list, where a queue-scaled reconciler job is started for it');
});

t.test('a retried job waits out its backoff, though it was created long ago', async (t) => {
  const client = redis.client();
  const queue = new Queue('promote-retry', { connection: client, prefix: keys.bullPrefix('promote-retry') });
  t.teardown(() => queue.close());
  const { Worker } = await import('bullmq');
  const worker = new Worker(
    'promote-retry',
    async () => {
      throw new Error('receiver down');
    },
    { connection: redis.client(), prefix: keys.bullPrefix('promote-retry'), autorun: false },
  );
  t.teardown(() => worker.close());
  // Created 10 minutes ago: `timestamp + delay` would call it due at once, but a retry's backoff
  // counts from its failure.
  const job = await queue.add(
    'alert',
    {},
    { timestamp: Date.now() - 600_000, attempts: 3, backoff: { type: 'fixed', delay: 60_000 } },
  );
  void worker.run();
  await waitFor(
    'failed once, delayed for backoff',
    () => job.getState().then(async (s) => ({ s, n: (await queue.getJob(job.id ?? ''))?.attemptsMade ?? 0 })),
    (x) => x.s === 'delayed' && x.n === 1,
    10_000,
  );
  await worker.pause(true);
  t.equal(await promoteDue(client, [queue], Date.now()), 0, 'not due during its backoff');
  t.equal(await job.getState(), 'delayed');
  t.equal(await promoteDue(client, [queue], Date.now() + 61_000), 1, 'due once the backoff has passed');
});
