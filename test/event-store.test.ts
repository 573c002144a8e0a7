import t from 'tap';
import { Keys } from '../shared/keys.js';
import { MemoryEventStore } from '../store/events/memory-event-store.js';
import { RedisEventStore } from '../store/events/redis-event-store.js';
import { startRedis } from '../testkit/redis.js';
import { eventStoreSuite, T0 } from './event-store.shared.js';

t.test('memory', async (t) => {
  eventStoreSuite(t, { make: async ({ maxEventsPerAgent }) => new MemoryEventStore({ maxEventsPerAgent }) });
});

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  eventStoreSuite(t, {
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
});
