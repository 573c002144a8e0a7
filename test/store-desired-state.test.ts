/** The desired-state store: the contract on the memory twin and on Redis, then Redis caching and TTLs. */
import t from 'tap';
import { MemoryStateStore } from '../store/desired-state/memory-state-store.js';
import { RedisStateStore } from '../store/desired-state/redis-state-store.js';
import { storeRedis } from './helpers/store-redis.js';
import { at, desired, stateStoreContract } from './store-desired-state.contract.js';

t.test('memory', async (t) => stateStoreContract(t, () => new MemoryStateStore()));

t.test('redis', async (t) => {
  const { client, freshKeys } = await storeRedis(t);

  t.test('contract', async (t) =>
    stateStoreContract(t, () => new RedisStateStore({ redis: client, keys: freshKeys() })),
  );

  t.test('caching and TTLs', async (t) => {
    t.test('another replica reads what one saved; each caches the parsed state', async (t) => {
      const keys = freshKeys();
      const a = new RedisStateStore({ redis: client, keys });
      const b = new RedisStateStore({ redis: client, keys });
      await a.saveGood('aaa', desired('one'), at(1));
      const first = await b.current();
      t.same(first, { revision: 'aaa', state: desired('one') });
      t.equal(await b.current(), first, 'the same object: parsed once per revision');
      // The cache answers without reading the state again …
      await client.del(keys.desiredState('aaa'));
      t.equal(await b.current(), first);
      t.equal(
        await new RedisStateStore({ redis: client, keys }).current(),
        null,
        '… which a fresh process must',
      );
      // … but follows the status: a revision saved elsewhere replaces it.
      await a.saveGood('bbb', desired('two'), at(2));
      t.same(await b.current(), { revision: 'bbb', state: desired('two') });
    });

    t.test('a superseded state expires; the current one does not', async (t) => {
      const keys = freshKeys();
      const store = new RedisStateStore({ redis: client, keys });
      await store.saveGood('aaa', desired('one'), at(1));
      t.equal(await client.pttl(keys.desiredState('aaa')), -1);
      await store.saveGood('aaa', desired('one'), at(2));
      t.equal(
        await client.pttl(keys.desiredState('aaa')),
        -1,
        'saving the same revision again changes nothing',
      );
      await store.saveGood('bbb', desired('two'), at(3));
      const old = await client.pttl(keys.desiredState('aaa'));
      t.ok(old > 23 * 3_600_000 && old <= 24 * 3_600_000, `the old state lives a day (${old})`);
      t.equal(await client.pttl(keys.desiredState('bbb')), -1);
      // Back to the old revision: it is current again and must not expire under it.
      await store.saveGood('aaa', desired('one'), at(4));
      t.equal(await client.pttl(keys.desiredState('aaa')), -1);
      t.ok((await client.pttl(keys.desiredState('bbb'))) > 0);
      t.equal(await client.pttl(keys.sourceStatus()), -1, 'the status is derived data kept until replaced');
    });
  });
});
