/** The event store: the contract on the memory twin and on Redis, then what only Redis does. */
import t from 'tap';
import { eventSortKey } from '../shared/events.js';
import { Keys } from '../shared/keys.js';
import { MemoryEventStore } from '../store/events/memory-event-store.js';
import { RedisEventStore, type RedisEventStoreOptions } from '../store/events/redis-event-store.js';
import { startRedis } from '../testkit/redis.js';
import { eventStoreContract, runEvent, T0 } from './store-events.contract.js';

const HOUR = 3_600_000;

t.test('memory', async (t) => {
  eventStoreContract(t, {
    make: async ({ maxEventsPerAgent }) => new MemoryEventStore({ maxEventsPerAgent }),
  });
});

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  eventStoreContract(t, {
    // A fresh prefix per test keeps tests apart on one server; the clock sits beside the suite's
    // fixed times so index entries are not pruned as older than the TTL.
    make: async ({ maxEventsPerAgent }) =>
      new RedisEventStore({
        redis: client,
        keys: new Keys(`${redis.prefix}-${n++}`),
        ttlMs: 3_600_000,
        maxEventsPerAgent,
        now: () => T0 + 60_000,
      }),
  });

  t.test(
    'what only Redis does: TTLs, key bounds, lazy pruning, repairing a half-written record',
    async (t) => {
      const make = (extra: Partial<RedisEventStoreOptions> = {}) => {
        const keys = new Keys(`${redis.prefix}-${n++}`);
        let now = T0 + 60_000;
        const store = new RedisEventStore({ redis: client, keys, ttlMs: HOUR, now: () => now, ...extra });
        return { store, keys, advance: (ms: number) => (now += ms) };
      };

      t.test('events and indexes carry the TTL', async (t) => {
        const { store, keys } = make();
        await store.record(runEvent('e1', 'web-01', 'deploy', T0));
        for (const key of [
          keys.agentEvent('web-01', 'e1'),
          keys.agentEvents('web-01'),
          keys.taskEvents('deploy'),
          keys.allEvents(),
        ]) {
          const ttl = await client.pttl(key);
          t.ok(ttl > HOUR - 60_000 && ttl <= HOUR, `${key} expires within the TTL (${ttl})`);
        }
      });

      t.test('the per-agent bound deletes trimmed events, not just their index entries', async (t) => {
        const { store, keys } = make({ maxEventsPerAgent: 2 });
        for (let i = 0; i < 4; i++) await store.record(runEvent(`e${i}`, 'web-01', 'deploy', T0 + i));
        t.same(
          await Promise.all([0, 1, 2, 3].map((i) => client.exists(keys.agentEvent('web-01', `e${i}`)))),
          [0, 0, 1, 1],
        );
        t.equal(await client.zcard(keys.agentEvents('web-01')), 2);
        const page = await store.query({ task: 'deploy', limit: 10 });
        t.same(
          page.events.map((e) => e.id),
          ['e3', 'e2'],
        );
        t.equal(
          await client.zcard(keys.taskEvents('deploy')),
          2,
          'the task index dropped the trimmed entries it met',
        );
      });

      t.test('task and global indexes are bounded', async (t) => {
        const { store, keys } = make({ maxTaskIndex: 3, maxAllIndex: 4 });
        for (let i = 0; i < 6; i++) await store.record(runEvent(`e${i}`, `web-0${i}`, 'deploy', T0 + i));
        t.equal(await client.zcard(keys.taskEvents('deploy')), 3);
        t.equal(await client.zcard(keys.allEvents()), 4);
        t.equal(await store.size(), 4);
        t.same(
          (await store.query({ task: 'deploy', limit: 10 })).events.map((e) => e.id),
          ['e5', 'e4', 'e3'],
        );
        t.same(
          (await store.query({ agent: 'web-00', limit: 10 })).events.map((e) => e.id),
          ['e0'],
          'still reachable by agent',
        );
      });

      t.test('writes trim a large index only past a tenth over its bound; reads see the bound', async (t) => {
        const { store, keys } = make({ maxTaskIndex: 20, maxAllIndex: 20 });
        for (let i = 0; i < 22; i++) await store.record(runEvent(`e${i}`, `web-${i}`, 'deploy', T0 + i));
        t.equal(await client.zcard(keys.allEvents()), 22, 'within the slack: not trimmed on write');
        await store.record(runEvent('e22', 'web-22', 'deploy', T0 + 22));
        t.equal(await client.zcard(keys.allEvents()), 20, 'past it: trimmed to the bound');
        t.equal(await client.zcard(keys.taskEvents('deploy')), 20);
        await store.record(runEvent('e23', 'web-23', 'deploy', T0 + 23));
        t.equal(await client.zcard(keys.allEvents()), 21);
        t.equal(await store.size(), 20, 'a read trims to the bound first');
        const page = await store.query({ task: 'deploy', limit: 100 });
        t.equal(page.events.length, 20);
        t.equal(page.events[0]?.id, 'e23');
        t.equal(page.events.at(-1)?.id, 'e4');
      });

      t.test('an expired event is pruned from the index that meets it', async (t) => {
        const { store, keys } = make();
        for (let i = 0; i < 3; i++) await store.record(runEvent(`e${i}`, 'web-01', 'deploy', T0 + i));
        // What Redis does when the event's TTL ends: the string goes, the index entry stays.
        await client.del(keys.agentEvent('web-01', 'e1'));
        const page = await store.query({ agent: 'web-01', limit: 1 });
        t.same(
          page.events.map((e) => e.id),
          ['e2'],
        );
        const rest = await store.query({ agent: 'web-01', limit: 10, before: page.next_cursor });
        t.same(
          rest.events.map((e) => e.id),
          ['e0'],
        );
        t.same(await client.zrange(keys.agentEvents('web-01'), '0', '-1'), [
          eventSortKey(runEvent('e0', 'web-01', 'deploy', T0)),
          eventSortKey(runEvent('e2', 'web-01', 'deploy', T0 + 2)),
        ]);
      });

      t.test('entries older than the TTL are dropped by time without reading their events', async (t) => {
        const { store, keys, advance } = make();
        await store.record(runEvent('old', 'web-01', 'deploy', T0));
        await store.record(runEvent('new', 'web-01', 'deploy', T0 + HOUR));
        advance(HOUR + 1);
        t.same(
          (await store.query({ limit: 10 })).events.map((e) => e.id),
          ['new'],
        );
        t.equal(await client.zcard(keys.allEvents()), 1);
        t.equal(await store.size(), 1);
      });

      t.test('recording again repairs indexes a crashed first attempt never wrote', async (t) => {
        const { store, keys } = make();
        await store.record(runEvent('e1', 'web-01', 'deploy', T0));
        await client.del(keys.taskEvents('deploy'), keys.allEvents());
        t.equal(await store.record(runEvent('e1', 'web-01', 'deploy', T0 + 999)), false);
        t.same(await client.zrange(keys.taskEvents('deploy'), '0', '-1'), [
          eventSortKey(runEvent('e1', 'web-01', 'deploy', T0)),
        ]);
        t.same(
          (await store.query({ limit: 10 })).events.map((e) => e.at),
          [new Date(T0).toISOString()],
        );
      });

      t.test('an unreadable event is skipped, not deleted', async (t) => {
        const { store, keys } = make();
        await store.record(runEvent('e1', 'web-01', 'deploy', T0));
        await store.record(runEvent('e2', 'web-01', 'deploy', T0 + 1));
        await client.set(keys.agentEvent('web-01', 'e2'), '{"kind":"from_the_future"}', 'KEEPTTL');
        t.same(
          (await store.query({ agent: 'web-01', limit: 10 })).events.map((e) => e.id),
          ['e1'],
        );
        t.equal(await client.zcard(keys.agentEvents('web-01')), 2);
      });
    },
  );
});
