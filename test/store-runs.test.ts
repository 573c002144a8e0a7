/** The run store: the contract on the memory twin and on Redis, Redis TTLs, and the pure summary. */
import t from 'tap';
import { MemoryRunStore } from '../store/runs/memory-run-store.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import { summarize } from '../store/runs/run-summary.js';
import { ttls } from './helpers/redis-ttls.js';
import { storeRedis } from './helpers/store-redis.js';
import { META, runStoreContract } from './store-runs.contract.js';

t.test('memory', async (t) => runStoreContract(t, () => new MemoryRunStore()));

t.test('redis', async (t) => {
  const { client, freshKeys } = await storeRedis(t);

  t.test('contract', async (t) =>
    runStoreContract(t, () => new RedisRunStore({ redis: client, keys: freshKeys() })),
  );

  t.test('TTLs', async (t) => {
    t.test('setOutcomes never creates a run that is gone', async (t) => {
      const keys = freshKeys();
      const store = new RedisRunStore({ redis: client, keys });
      await store.setOutcomes('run-gone', [{ agent: 'web-01', task: 'a', outcome: 'applied' }]);
      t.equal(await client.exists(keys.reconcileRun('run-gone')), 0);
    });

    t.test('a run lives a day, and no write leaves a key without a TTL', async (t) => {
      const keys = freshKeys();
      const store = new RedisRunStore({ redis: client, keys });
      await store.create(META);
      await store.setAgents('run-1', ['web-01']);
      await store.setAgentState('run-1', 'web-01', 'dispatched', ['a']);
      await store.setOutcome('run-1', 'web-01', 'a', 'applied');
      await store.setOutcome('run-gone', 'web-01', 'a', 'applied');
      await store.setAgentState('run-gone', 'web-01', 'dispatched', ['a']);
      await store.setAgents('run-gone', ['web-01']);
      const all = await ttls(client, keys.prefix);
      t.same(Object.keys(all), [keys.reconcileRun('run-1')]);
      const ttl = all[keys.reconcileRun('run-1')] ?? -1;
      t.ok(ttl > 23 * 3_600_000 && ttl <= 24 * 3_600_000, `a day (${ttl})`);
    });
  });
});

t.test('summarize (pure)', async (t) => {
  const raw = {
    meta: JSON.stringify(META),
    fanout: 'done',
    'a:web-01': 'dispatched',
    'a:web-02': 'undeliverable',
    'a:ghost': 'not_connected',
    'p:web-01\u0000b': 'unconverged',
    'p:web-01\u0000a': 'skipped',
    'p:web-02\u0000a': 'undeliverable',
  };
  const progress = summarize(META, raw);
  t.same(progress.summary, {
    targeted_agents: 3,
    pending: 0,
    succeeded: 0,
    failed: 1,
    skipped: 3,
    timed_out: 0,
  });
  t.same(
    progress.results.map((r) => `${r.agent}/${r.task}`),
    ['web-01/a', 'web-01/b', 'web-02/a'],
  );
  t.equal(progress.done, true);
  t.equal(summarize(META, { ...raw, fanout: 'pending' }).done, false, 'not done before the fan-out ran');
});
