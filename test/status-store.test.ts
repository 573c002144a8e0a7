import t from 'tap';
import { MemoryStatusStore } from '../reconciler/status-store/memory-status-store.js';
import { RedisStatusStore } from '../reconciler/status-store/redis-status-store.js';
import { Keys } from '../shared/keys.js';
import { startRedis } from './helpers/redis.js';
import { statusStoreSuite } from './status-store.shared.js';

const TTL = 3_600_000;

t.test('memory', async (t) => {
  statusStoreSuite(t, {
    make: async () => {
      let now = 1_000_000;
      const store = new MemoryStatusStore({ ttlMs: TTL, now: () => now });
      // One clock for the whole store: expiring one agent means the others are written again after.
      return {
        store,
        expire: async (agent) => {
          const survivors = (await store.listProblems()).filter((p) => p.agent !== agent);
          now += TTL;
          for (const p of survivors) await store.setStatus(p.agent, p.status);
        },
      };
    },
  });
});

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  statusStoreSuite(t, {
    make: async () => {
      const keys = new Keys(`${redis.prefix}-${n++}`);
      return {
        store: new RedisStatusStore({ redis: client, keys, ttlMs: TTL }),
        // What the TTL ending does: the agent's hashes go; the global index keeps its entries.
        expire: async (agent) => {
          await client.del(keys.taskStatus(agent), keys.driftEpisodes(agent));
        },
      };
    },
  });

  t.test('every write for an agent refreshes the TTL of its keys', async (t) => {
    const keys = new Keys(`${redis.prefix}-ttl`);
    const store = new RedisStatusStore({ redis: client, keys, ttlMs: TTL });
    await store.openEpisode('web-01', {
      id: 'i1.0',
      task: 'certs',
      opened_at: '2025-03-13T14:22:01.000Z',
      revision: 'c0ffee',
      policy: 'remediate',
      drifted_steps: [],
    });
    await store.setStatus('web-01', {
      task: 'certs',
      outcome: 'drifted',
      mode: 'check',
      revision: 'c0ffee',
      execution_id: 'i1.0',
      at: '2025-03-13T14:22:01.000Z',
      drifted_steps: ['renew'],
      failed_steps: [],
      policy: 'remediate',
    });
    for (const key of [keys.taskStatus('web-01'), keys.driftEpisodes('web-01')]) {
      const ttl = await client.pttl(key);
      t.ok(ttl > TTL - 60_000 && ttl <= TTL, `${key} ttl ${ttl}`);
    }
    t.same(await client.zrange(keys.statusProblems(), '0', '-1'), ['web-01\0certs']);
  });
});
