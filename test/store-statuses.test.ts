import t from 'tap';
import { Keys } from '../shared/keys.js';
import { type NewDriftEpisode, type TaskStatus, TaskStatusSchema } from '../shared/status.js';
import type { TaskOutcome } from '../shared/types.js';
import { MemoryStatusStore } from '../store/statuses/memory-status-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import { toTaskStatus } from '../store/statuses/status-codec.js';
import { startRedis } from '../testkit/redis.js';
import { statusStoreContract } from './store-statuses.contract.js';

const TTL = 3_600_000;

/** An open drift episode of task `certs`, as the judge opens one. */
const CERTS_EPISODE: NewDriftEpisode = {
  id: 'i1.0',
  task: 'certs',
  opened_at: '2025-03-13T14:22:01.000Z',
  revision: 'c0ffee',
  policy: 'remediate',
  drifted_steps: [],
};

t.test('memory', async (t) => {
  statusStoreContract(t, {
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
  statusStoreContract(t, {
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
    await store.openEpisode('web-01', CERTS_EPISODE);
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
  t.test('setStatusesMany: one agent failing does not fail the others', async (t) => {
    const keys = new Keys(`${redis.prefix}-many`);
    const store = new RedisStatusStore({ redis: client, keys, ttlMs: TTL });
    await client.set(keys.taskStatus('broken'), 'not a hash');
    const status = (task: string, outcome: TaskOutcome): TaskStatus => ({
      task,
      outcome,
      mode: 'apply',
      revision: 'c0ffee',
      execution_id: `${task}.0`,
      at: '2025-03-13T14:22:01.000Z',
      drifted_steps: [],
      failed_steps: [],
      policy: 'remediate',
    });
    const results = await store.setStatusesMany([
      { agent: 'web-01', statuses: [status('certs', 'failed')] },
      { agent: 'broken', statuses: [status('certs', 'failed')] },
      { agent: 'web-02', statuses: [status('certs', 'satisfied')] },
    ]);
    t.same(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    t.match(String((results[1] as PromiseRejectedResult).reason), /WRONGTYPE/);
    t.same(await store.getStatus('web-01', 'certs'), status('certs', 'failed'));
    t.same(await store.getStatus('web-02', 'certs'), status('certs', 'satisfied'));
    // The broken agent's index entry was added before its write failed: an extra entry, pruned
    // on read (once the key is readable).
    await client.del(keys.taskStatus('broken'));
    t.same(
      (await store.listProblems()).map((p) => p.agent),
      ['web-01'],
    );
    await store.openEpisode('web-02', CERTS_EPISODE);
    await client.pexpire(keys.taskStatus('web-02'), 1000);
    await client.pexpire(keys.driftEpisodes('web-02'), 1000);
    await store.setStatusesMany([{ agent: 'web-02', statuses: [status('certs', 'applied')] }]);
    for (const key of [keys.taskStatus('web-02'), keys.driftEpisodes('web-02')]) {
      const ttl = await client.pttl(key);
      t.ok(ttl > TTL - 60_000 && ttl <= TTL, `the batch write refreshes ${key} (ttl ${ttl})`);
    }
  });

  t.test('data Fluke did not write (a NUL in a field) is read the plain way', async (t) => {
    const keys = new Keys(`${redis.prefix}-nul`);
    const store = new RedisStatusStore({ redis: client, keys, ttlMs: TTL });
    const status: TaskStatus = {
      task: 'certs',
      outcome: 'satisfied',
      mode: 'apply',
      revision: 'c0ffee',
      execution_id: 'i1.0',
      at: '2025-03-13T14:22:01.000Z',
      drifted_steps: [],
      failed_steps: [],
      policy: 'remediate',
    };
    await store.setStatuses('web-01', [status, { ...status, task: 'odd\0name' }]);
    await client.hset(keys.taskStatus('web-01'), 'junk', 'x\0y');
    const snap = await store.snapshot('web-01');
    t.same([...snap.statuses.keys()].sort(), ['certs', 'odd\0name']);
    t.same(snap.statuses.get('odd\0name'), { ...status, task: 'odd\0name' });
    t.same(await store.snapshots(['web-01']), [snap]);
  });

  t.test('statuses are validated as TaskStatusSchema validates them', async (t) => {
    const good: Record<string, unknown> = {
      task: 'certs',
      outcome: 'drifted',
      mode: 'check',
      revision: '',
      execution_id: 'i1.0',
      at: 'whenever',
      drifted_steps: ['a'],
      failed_steps: [],
      policy: 'alert_only',
    };
    const cases: unknown[] = [
      good,
      { ...good, extra: 1 },
      { ...good, task: '' },
      { ...good, execution_id: '' },
      { ...good, outcome: 'bogus' },
      { ...good, mode: 'both' },
      { ...good, policy: 'never' },
      { ...good, drifted_steps: [1] },
      { ...good, failed_steps: 'a' },
      { ...good, at: 5 },
      { ...good, revision: null },
      { ...good, issued_at: '2025-03-13T14:22:01.000Z' },
      { ...good, issued_at: '2025-03-13T14:22:01.000Z', extra: 1 },
      { ...good, issued_at: 5 },
      { ...good, issued_at: null },
      { ...good, finished_at: '2025-03-13T14:22:01.500Z' },
      { ...good, issued_at: '2025-03-13T14:22:01.000Z', finished_at: '2025-03-13T14:22:01.500Z' },
      { ...good, finished_at: '2025-03-13T14:22:01.500Z', extra: 1 },
      { ...good, finished_at: 5 },
      Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'policy')),
      null,
      [],
      'certs',
      42,
    ];
    for (const value of cases) {
      const parsed = TaskStatusSchema.safeParse(value);
      t.same(toTaskStatus(value), parsed.success ? parsed.data : null, JSON.stringify(value));
    }
  });
});
