/** Enrollments: the contract on the memory twin and on Redis, and the Redis TTLs. */
import t from 'tap';
import { MemoryEnrollments } from '../store/identity/memory-enrollments.js';
import { RedisEnrollments } from '../store/identity/redis-enrollments.js';
import { storeRedis } from './helpers/store-redis.js';
import { enrollmentsContract, terms } from './store-enrollments.contract.js';

t.test('memory', async (t) => enrollmentsContract(t, () => new MemoryEnrollments()));

t.test('memory: a record lapses after its TTL', async (t) => {
  let now = 0;
  const store = new MemoryEnrollments(() => now);
  await store.claim(terms('fp-a', { ttlMs: 1000 }));
  now = 999;
  t.ok(await store.get('web-01'));
  now = 1000;
  t.equal(await store.get('web-01'), null);
  t.same(await store.claim(terms('fp-b')), { ok: true, previous: null });
});

t.test('redis', async (t) => {
  const { client, freshKeys } = await storeRedis(t);

  t.test('contract', async (t) => enrollmentsContract(t, () => new RedisEnrollments(client, freshKeys())));

  t.test('every claim sets the TTL; touch renews it for the holder only', async (t) => {
    const keys = freshKeys();
    const store = new RedisEnrollments(client, keys);
    await store.claim(terms('fp-a', { ttlMs: 60_000 }));
    const ttl = await client.pttl(keys.enrollment('web-01'));
    t.ok(ttl > 50_000 && ttl <= 60_000, `claim TTL ${ttl}`);
    await store.touch([{ name: 'web-01', identity: 'fp-b' }], 600_000);
    t.ok((await client.pttl(keys.enrollment('web-01'))) <= 60_000, 'another identity does not renew');
    await store.touch([{ name: 'web-01', identity: 'fp-a' }], 600_000);
    t.ok((await client.pttl(keys.enrollment('web-01'))) > 500_000, 'the holder renews');
    await store.touch([{ name: 'gone', identity: 'fp-a' }], 600_000);
    t.equal(await client.exists(keys.enrollment('gone')), 0, 'touch never creates a record');
  });

  t.test('two claims racing for one name: exactly one wins', async (t) => {
    const keys = freshKeys();
    const a = new RedisEnrollments(client, keys);
    const other = client.duplicate();
    t.teardown(() => other.disconnect());
    const b = new RedisEnrollments(other, keys);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claim(terms(`fp-${i}`))),
    );
    t.equal(outcomes.filter((o) => o.ok).length, 1);
  });
});
