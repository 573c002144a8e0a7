/**
 * The instruction store contract (store/instructions/instruction-store.ts), run against the memory
 * twin and the Redis implementation by store-instructions.test.ts.
 */
import type { Test } from 'tap';
import type { InstructionRecord, InstructionStore } from '../store/instructions/instruction-store.js';

export const T0 = Date.parse('2025-03-13T14:22:01.000Z');

export function record(
  id: string,
  tasks: string[],
  extra: Partial<InstructionRecord> = {},
): InstructionRecord {
  return {
    instruction_id: id,
    agent: 'web-01',
    session_id: 's-1',
    trigger: 'commit',
    run_id: null,
    revision: 'c0ffee',
    created_at: new Date(T0).toISOString(),
    retry: 0,
    tasks: tasks.map((task, i) => ({ task, execution_id: `${id}.${i}`, mode: 'apply', policy: 'remediate' })),
    ...extra,
  };
}

export function instructionStoreContract(t: Test, make: () => InstructionStore) {
  t.test('save and get: every task starts pending', async (t) => {
    const store = make();
    t.equal(await store.get('i-1'), null);
    const r = record('i-1', ['a', 'b'], { run_id: 'run-1', trigger: 'manual', retry: 2 });
    await store.save(r);
    t.same(await store.get('i-1'), { record: r, pending: ['a', 'b'], outcomes: {} });
  });

  t.test('finishTask counts what is still pending, and is idempotent', async (t) => {
    const store = make();
    await store.save(record('i-1', ['a', 'b', 'c']));
    t.equal(await store.finishTask('i-1', 'b', 'applied'), 2);
    t.equal(await store.finishTask('i-1', 'b', 'applied'), 2, 'again: the same count');
    t.same((await store.get('i-1'))?.pending, ['a', 'c']);
    t.same((await store.get('i-1'))?.outcomes, { b: 'applied' }, 'finished tasks keep their outcome');
    t.equal(await store.finishTask('i-1', 'a', 'timeout'), 1);
    t.equal(await store.finishTask('i-1', 'c', 'failed'), 0);
    t.same((await store.get('i-1'))?.pending, []);
    await store.complete('i-1');
    t.same((await store.get('i-1'))?.pending, [], 'still readable after complete');
  });

  t.test('finishTask on a missing record does not create one', async (t) => {
    const store = make();
    t.equal(await store.finishTask('i-gone', 'a', 'applied'), 0);
    t.equal(await store.get('i-gone'), null);
  });

  t.test('saving again (a re-run job) keeps what already finished', async (t) => {
    const store = make();
    const first = record('i-1', ['a', 'b']);
    await store.save(first);
    await store.finishTask('i-1', 'a', 'applied');
    await store.save({ ...first, created_at: new Date(T0 + 60_000).toISOString(), revision: 'beef' });
    t.same(
      await store.get('i-1'),
      { record: first, pending: ['b'], outcomes: { a: 'applied' } },
      'the first record stands',
    );
  });

  t.test('getMany is get for each id, in order', async (t) => {
    const store = make();
    await store.save(record('i-1', ['a', 'b']));
    await store.save(record('i-2', ['c'], { run_id: 'run-1', trigger: 'manual' }));
    await store.finishTask('i-1', 'b', 'applied');
    const ids = ['i-2', 'i-gone', 'i-1'];
    t.same(await store.getMany(ids), await Promise.all(ids.map((id) => store.get(id))));
    t.same(await store.getMany([]), []);
    t.match(await store.getMany(['i-1']), [{ pending: ['a'], outcomes: { b: 'applied' } }]);
  });

  t.test('settleTasks finishes and counts; later entries win; a gone record stays gone', async (t) => {
    const store = make();
    await store.save(record('i-1', ['a', 'b', 'c']));
    t.equal(await store.settleTasks('i-1', [{ task: 'a', outcome: 'applied' }]), 2);
    t.equal(
      await store.settleTasks('i-1', [
        { task: 'b', outcome: 'drifted' },
        { task: 'b', outcome: 'failed' },
      ]),
      1,
    );
    t.same((await store.get('i-1'))?.outcomes, { a: 'applied', b: 'failed' });
    t.equal(await store.settleTasks('i-1', [{ task: 'c', outcome: 'timeout' }]), 0);
    t.equal(await store.settleTasks('i-1', [{ task: 'c', outcome: 'timeout' }]), 0, 'idempotent');
    t.equal(await store.settleTasks('i-1', [], true), 0, 'nothing to finish');
    t.equal(await store.settleTasks('i-gone', [{ task: 'a', outcome: 'applied' }], true), 0);
    t.equal(await store.get('i-gone'), null, 'not resurrected');
  });

  t.test('settleMany settles each instruction on its own, in order', async (t) => {
    const store = make();
    await store.save(record('i-1', ['a', 'b']));
    await store.save(record('i-2', ['a']));
    const results = await store.settleMany([
      { instruction_id: 'i-1', done: [{ task: 'a', outcome: 'applied' }], complete: false },
      { instruction_id: 'i-gone', done: [{ task: 'a', outcome: 'applied' }], complete: true },
      { instruction_id: 'i-2', done: [{ task: 'a', outcome: 'satisfied' }], complete: false },
    ]);
    t.same(
      results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason))),
      [1, 0, 0],
    );
    t.same((await store.get('i-1'))?.pending, ['b']);
    t.same((await store.get('i-2'))?.outcomes, { a: 'satisfied' });
  });
}
