/**
 * The instruction store: the contract on the memory twin and on Redis, then what only Redis does
 * (TTLs, pipelines, values it did not write) and the metered wrapper.
 */
import t from 'tap';
import { MemoryInstructionStore } from '../store/instructions/memory-instruction-store.js';
import { MeteredInstructionStore } from '../store/instructions/metered-instruction-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { ttls } from './helpers/redis-ttls.js';
import { storeRedis } from './helpers/store-redis.js';
import { instructionStoreContract, record } from './store-instructions.contract.js';

t.test('memory', async (t) => {
  t.test('contract', async (t) => instructionStoreContract(t, () => new MemoryInstructionStore()));

  t.test('complete and settling to nothing left mark the record completed', async (t) => {
    const store = new MemoryInstructionStore();
    await store.save(record('i-1', ['a']));
    await store.save(record('i-2', ['a', 'b']));
    await store.settleTasks('i-1', [{ task: 'a', outcome: 'applied' }]);
    await store.settleTasks('i-2', [{ task: 'a', outcome: 'requeued' }], true);
    await store.settleTasks('i-gone', [], true);
    await store.complete('i-3');
    t.same(store.completed, ['i-1', 'i-2', 'i-3']);
    store.expire('i-1');
    t.equal(await store.get('i-1'), null);
  });
});

t.test('redis', async (t) => {
  const { client, freshKeys } = await storeRedis(t);

  t.test('contract', async (t) =>
    instructionStoreContract(t, () => new RedisInstructionStore({ redis: client, keys: freshKeys() })),
  );

  t.test('TTLs', async (t) => {
    t.test('a record lives a day; complete shortens that to minutes', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a']));
      const key = keys.instruction('i-1');
      const day = await client.pttl(key);
      t.ok(day > 23 * 3_600_000 && day <= 24 * 3_600_000, `a day (${day})`);
      t.equal(await store.finishTask('i-1', 'a', 'applied'), 0);
      t.equal((await client.pttl(key)) > 23 * 3_600_000, true, 'finishing keeps the TTL');
      await store.complete('i-1');
      const short = await client.pttl(key);
      t.ok(short > 0 && short <= 600_000, `minutes (${short})`);
    });

    t.test('a late finishTask after expiry does not resurrect the record', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a', 'b']));
      await client.del(keys.instruction('i-1')); // what the TTL ending does
      t.equal(await store.finishTask('i-1', 'a', 'applied'), 0);
      await store.complete('i-1');
      t.equal(await client.exists(keys.instruction('i-1')), 0);
      t.same(await ttls(client, keys.prefix), {});
    });

    t.test('no key is left without a TTL', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a', 'b']));
      await store.finishTask('i-1', 'a', 'applied');
      await store.save(record('i-1', ['a', 'b']));
      await store.finishTask('i-2', 'a', 'applied');
      await store.complete('i-2');
      const all = await ttls(client, keys.prefix);
      t.same(Object.keys(all), [keys.instruction('i-1')]);
      t.ok(Object.values(all).every((ms) => ms > 0));
    });
  });

  t.test('batch reads and settles', async (t) => {
    t.test('getMany is get for each id, in order, in one pipeline', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a', 'b']));
      await store.save(record('i-2', ['c'], { run_id: 'run-1', trigger: 'manual' }));
      await store.finishTask('i-1', 'b', 'applied');
      const ids = ['i-2', 'i-gone', 'i-1'];
      t.same(await store.getMany(ids), await Promise.all(ids.map((id) => store.get(id))));
      t.same(await store.getMany([]), []);
      t.match(await store.getMany(['i-1']), [{ pending: ['a'], outcomes: { b: 'applied' } }]);
    });

    t.test('a value Fluke did not write (with a NUL) is read the plain way', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a', 'b']));
      await client.hset(keys.instruction('i-1'), 't:b', 'odd\0value', 'x\0y', 'z');
      t.same(await store.get('i-1'), {
        record: record('i-1', ['a', 'b']),
        pending: ['a'],
        outcomes: { b: 'odd\0value' },
      });
      t.same(await store.getMany(['i-1']), [await store.get('i-1')]);
    });

    t.test('settleTasks: finishes, counts, and completes when nothing is left', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      const key = keys.instruction('i-1');
      await store.save(record('i-1', ['a', 'b', 'c']));
      t.equal(await store.settleTasks('i-1', [{ task: 'a', outcome: 'applied' }]), 2);
      t.ok((await client.pttl(key)) > 23 * 3_600_000, 'still a day');
      t.equal(
        await store.settleTasks('i-1', [
          { task: 'b', outcome: 'drifted' },
          { task: 'b', outcome: 'failed' },
        ]),
        1,
        'later entries win',
      );
      t.same((await store.get('i-1'))?.outcomes, { a: 'applied', b: 'failed' });
      t.equal(await store.settleTasks('i-1', [{ task: 'c', outcome: 'timeout' }]), 0);
      const short = await client.pttl(key);
      t.ok(short > 0 && short <= 600_000, `completed: minutes (${short})`);
      t.equal(await store.settleTasks('i-1', [{ task: 'c', outcome: 'timeout' }]), 0, 'idempotent');
    });

    t.test('settleTasks: complete anyway when asked; a gone record stays gone', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a', 'b']));
      t.equal(await store.settleTasks('i-1', [{ task: 'a', outcome: 'requeued' }], true), 1);
      const short = await client.pttl(keys.instruction('i-1'));
      t.ok(short > 0 && short <= 600_000, `completed with a task left (${short})`);
      await store.save(record('i-2', ['a']));
      t.equal(await store.settleTasks('i-2', [], true), 1, 'nothing to finish: only completed');
      t.ok((await client.pttl(keys.instruction('i-2'))) <= 600_000);
      t.equal(await store.settleTasks('i-gone', [{ task: 'a', outcome: 'applied' }], true), 0);
      t.equal(await client.exists(keys.instruction('i-gone')), 0, 'not resurrected');
    });

    t.test('settleMany: each instruction settled on its own, in one pipeline', async (t) => {
      const keys = freshKeys();
      const store = new RedisInstructionStore({ redis: client, keys });
      await store.save(record('i-1', ['a', 'b']));
      await store.save(record('i-2', ['a']));
      await store.save(record('i-3', ['a', 'b']));
      await client.set(keys.instruction('i-broken'), 'not a hash');
      const results = await store.settleMany([
        { instruction_id: 'i-1', done: [{ task: 'a', outcome: 'applied' }], complete: false },
        { instruction_id: 'i-broken', done: [{ task: 'a', outcome: 'applied' }], complete: false },
        { instruction_id: 'i-2', done: [{ task: 'a', outcome: 'satisfied' }], complete: false },
        { instruction_id: 'i-gone', done: [{ task: 'a', outcome: 'applied' }], complete: false },
        { instruction_id: 'i-3', done: [{ task: 'b\0odd', outcome: 'applied' }], complete: false },
      ]);
      const values = results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason)));
      t.match(values[1], /WRONGTYPE/, 'one broken record fails alone');
      // A task name with a NUL goes the plain way (and is no task of the record).
      t.same([values[0], values[2], values[3], values[4]], [1, 0, 0, 2]);
      t.same((await store.get('i-1'))?.pending, ['b']);
      t.ok((await client.pttl(keys.instruction('i-2'))) <= 600_000, 'i-2 completed');
      t.ok((await client.pttl(keys.instruction('i-1'))) > 600_000, 'i-1 not');
    });

    t.test('the metered store counts settled outcomes and observes completed cycles', async (t) => {
      const keys = freshKeys();
      const incs: Array<[string, unknown, number | undefined]> = [];
      const observed: Array<[string, unknown]> = [];
      const store = new MeteredInstructionStore({
        store: new RedisInstructionStore({ redis: client, keys }),
        metrics: {
          inc: (metric, labels, by) => {
            incs.push([metric, labels, by]);
          },
          observe: (metric, _value, labels) => {
            observed.push([metric, labels]);
          },
        },
      });
      await store.save(record('i-1', ['a', 'b', 'c'], { created_at: new Date().toISOString() }));
      await store.save(record('i-2', ['a'], { created_at: new Date().toISOString() }));
      t.equal((await store.getMany(['i-1', 'i-2'])).length, 2, 'read: cycles start');
      const results = await store.settleMany([
        {
          instruction_id: 'i-1',
          done: [
            { task: 'a', outcome: 'applied' },
            { task: 'b', outcome: 'applied' },
          ],
          complete: false,
        },
        { instruction_id: 'i-2', done: [{ task: 'a', outcome: 'satisfied' }], complete: false },
      ]);
      t.match(results, [{ value: 1 }, { value: 0 }]);
      t.same(incs, [
        ['taskResults', { outcome: 'applied' }, 2],
        ['taskResults', { outcome: 'satisfied' }, 1],
      ]);
      t.same(observed, [['reconcileCycle', { trigger: 'commit' }]], 'only i-2 completed');
      t.equal(await store.settleTasks('i-1', [{ task: 'c', outcome: 'failed' }]), 0);
      t.same(observed.length, 2, 'then i-1');
    });
  });
});
