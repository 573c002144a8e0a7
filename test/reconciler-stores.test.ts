/**
 * The reconciler's Redis stores (instructions, manual runs, desired state) on a real Redis, and
 * their in-memory twins (test/helpers/reconciler-fakes.ts) through the same behavioural suites,
 * so the handler unit tests run on fakes that behave like what production uses.
 */
import type { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { Keys } from '../shared/keys.js';
import type { DesiredState } from '../shared/types.js';
import { RedisStateStore, type StateStore } from '../store/desired-state/redis-state-store.js';
import { MeteredInstructionStore } from '../store/instructions/metrics-instruction-store.js';
import { type InstructionRecord, InstructionStore } from '../store/instructions/redis-instruction-store.js';
import { type RunMeta, RunStore, summarize } from '../store/runs/redis-run-store.js';
import { startRedis } from '../testkit/redis.js';
import {
  type InstructionStorePort,
  MemoryInstructionStore,
  MemoryRunStore,
  MemoryStateStore,
  type RunStorePort,
} from './helpers/reconciler-fakes.js';

const T0 = Date.parse('2025-03-13T14:22:01.000Z');
const at = (s: number) => new Date(T0 + s * 1000);

function record(id: string, tasks: string[], extra: Partial<InstructionRecord> = {}): InstructionRecord {
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

function desired(...names: string[]): DesiredState {
  return {
    tasks: names.map((name) => ({
      name,
      description: null,
      selector: { match_labels: { role: 'web' }, match_expressions: [] },
      drift: null,
      steps: [
        {
          type: 'shell',
          name: 'a',
          check: 'true',
          command: 'true',
          working_dir: null,
          run_as: null,
          env: {},
          on_failure: 'abort',
        },
      ],
    })),
  };
}

const META: RunMeta = { id: 'run-1', target: 'all', name: null, created_at: new Date(T0).toISOString() };

// ---- behavioural suites, run against both backends -----------------------------------------------

function instructionStoreSuite(t: Test, make: () => InstructionStorePort) {
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
}

function runStoreSuite(t: Test, make: () => RunStorePort) {
  t.test('a new run: fan-out pending, nothing targeted yet', async (t) => {
    const store = make();
    t.equal(await store.get('run-1'), null);
    await store.create(META);
    t.same(await store.get('run-1'), {
      meta: META,
      done: false,
      agents: {},
      results: [],
      executions: [],
      summary: { targeted_agents: 0, pending: 0, succeeded: 0, failed: 0, skipped: 0, timed_out: 0 },
    });
  });

  t.test('agents, their tasks and outcomes, up to done', async (t) => {
    const store = make();
    await store.create(META);
    await store.setAgents('run-1', ['db-01', 'ghost', 'web-01', 'web-02']);
    let run = await store.get('run-1');
    t.same(run?.agents, { 'db-01': 'pending', ghost: 'pending', 'web-01': 'pending', 'web-02': 'pending' });
    t.match(run, { done: false, summary: { targeted_agents: 4, pending: 4 } });

    await store.setAgentState('run-1', 'ghost', 'not_connected');
    await store.setAgentState('run-1', 'db-01', 'no_tasks');
    await store.setAgentState(
      'run-1',
      'web-01',
      'dispatched',
      ['config', 'motd', 'certs'],
      ['i1.0', 'i1.1', 'i1.2'],
    );
    await store.setAgentState('run-1', 'web-02', 'dispatched', ['config', 'certs']);
    run = await store.get('run-1');
    t.match(run, { done: false, summary: { targeted_agents: 4, pending: 5, skipped: 1 } });
    t.same(
      run?.executions,
      [
        { agent: 'web-01', task: 'certs', execution_id: 'i1.2' },
        { agent: 'web-01', task: 'config', execution_id: 'i1.0' },
        { agent: 'web-01', task: 'motd', execution_id: 'i1.1' },
      ],
      'dispatched executions are known before any result',
    );

    await store.setOutcome('run-1', 'web-01', 'config', 'applied');
    await store.setOutcome('run-1', 'web-01', 'motd', 'drifted');
    await store.setOutcome('run-1', 'web-01', 'certs', 'timeout');
    await store.setOutcome('run-1', 'web-02', 'config', 'satisfied');
    t.equal((await store.get('run-1'))?.done, false, 'one task still pending');
    await store.setOutcome('run-1', 'web-02', 'certs', 'undeliverable');
    run = await store.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'certs', outcome: 'timeout', execution_id: 'i1.2' },
      { agent: 'web-01', task: 'config', outcome: 'applied', execution_id: 'i1.0' },
      { agent: 'web-01', task: 'motd', outcome: 'drifted', execution_id: 'i1.1' },
      { agent: 'web-02', task: 'certs', outcome: 'undeliverable', execution_id: null },
      { agent: 'web-02', task: 'config', outcome: 'satisfied', execution_id: null },
    ]);
    t.same(run?.summary, {
      targeted_agents: 4,
      pending: 0,
      succeeded: 2,
      failed: 1,
      skipped: 2,
      timed_out: 1,
    });
    t.equal(run?.done, true);
    t.same(run?.agents, {
      'db-01': 'no_tasks',
      ghost: 'not_connected',
      'web-01': 'dispatched',
      'web-02': 'dispatched',
    });
  });

  t.test('a run that targets nobody is done at once', async (t) => {
    const store = make();
    await store.create(META);
    await store.setAgents('run-1', []);
    t.match(await store.get('run-1'), { done: true, summary: { targeted_agents: 0 } });
  });

  t.test('dispatching again (a re-run job) does not reset outcomes already in', async (t) => {
    const store = make();
    await store.create(META);
    await store.setAgents('run-1', ['web-01']);
    await store.setAgentState('run-1', 'web-01', 'dispatched', ['a', 'b']);
    await store.setOutcome('run-1', 'web-01', 'a', 'applied');
    await store.setAgentState('run-1', 'web-01', 'dispatched', ['a', 'b']);
    t.same((await store.get('run-1'))?.results, [
      { agent: 'web-01', task: 'a', outcome: 'applied', execution_id: null },
      { agent: 'web-01', task: 'b', outcome: 'pending', execution_id: null },
    ]);
  });

  t.test('writes for a run that does not exist (expired) write nothing', async (t) => {
    const store = make();
    await store.setOutcome('run-x', 'web-01', 'a', 'applied');
    await store.setAgentState('run-x', 'web-01', 'dispatched', ['a']);
    await store.setAgents('run-x', ['web-01']);
    t.equal(await store.get('run-x'), null);
  });
}

function stateStoreSuite(t: Test, make: () => StateStore) {
  t.test('an empty store: default status, no current state', async (t) => {
    const store = make();
    t.same(await store.status(), {
      revision: null,
      revision_at: null,
      last_poll_at: null,
      last_seen_revision: null,
      last_error: null,
      task_count: 0,
    });
    t.equal(await store.current(), null);
  });

  t.test('saveGood makes a revision current', async (t) => {
    const store = make();
    await store.saveGood('aaa', desired('one', 'two'), at(1));
    t.same(await store.current(), { revision: 'aaa', state: desired('one', 'two') });
    t.same(await store.status(), {
      revision: 'aaa',
      revision_at: at(1).toISOString(),
      last_poll_at: at(1).toISOString(),
      last_seen_revision: 'aaa',
      last_error: null,
      task_count: 2,
    });
    await store.saveGood('bbb', desired('three'), at(2));
    t.same(await store.current(), { revision: 'bbb', state: desired('three') });
    t.equal((await store.status()).task_count, 1);
  });

  t.test('recordError keeps the good revision; a good commit clears the error', async (t) => {
    const store = make();
    await store.saveGood('aaa', desired('one'), at(1));
    const diagnostics = [{ file: 'web.fluke.hcl', line: 5, column: 3, message: 'unknown attribute "owner"' }];
    await store.recordError('bad', '1 error(s)', diagnostics, at(2));
    let status = await store.status();
    t.same(status, {
      revision: 'aaa',
      revision_at: at(1).toISOString(),
      last_poll_at: at(2).toISOString(),
      last_seen_revision: 'bad',
      last_error: { revision: 'bad', message: '1 error(s)', diagnostics, at: at(2).toISOString() },
      task_count: 1,
    });
    t.equal((await store.current())?.revision, 'aaa');
    await store.recordPoll('bad', at(3));
    status = await store.status();
    t.equal(status.last_error?.revision, 'bad', 'seeing the bad commit again keeps the error');
    t.equal(status.last_poll_at, at(3).toISOString());
    await store.saveGood('ccc', desired('one'), at(4));
    t.equal((await store.status()).last_error, null);
  });

  t.test('recordPoll clears the error when the good revision is seen again', async (t) => {
    const store = make();
    await store.saveGood('aaa', desired('one'), at(1));
    await store.recordError(null, 'git fetch failed: unreachable', [], at(2));
    t.match(await store.status(), {
      revision: 'aaa',
      last_seen_revision: null,
      last_error: { revision: null },
    });
    await store.recordPoll('aaa', at(3));
    t.match(await store.status(), {
      revision: 'aaa',
      last_seen_revision: 'aaa',
      last_error: null,
      last_poll_at: at(3).toISOString(),
      revision_at: at(1).toISOString(),
    });
  });

  t.test('diagnostics are capped', async (t) => {
    const store = make();
    const many = Array.from({ length: 150 }, (_, i) => ({ file: 'a.fluke.hcl', line: i + 1, message: 'x' }));
    await store.recordError('bad', '150 error(s)', many, at(1));
    t.equal((await store.status()).last_error?.diagnostics.length, 100);
  });
}

// ---- memory twins --------------------------------------------------------------------------------

t.test('memory twins', async (t) => {
  t.test('instruction store', async (t) => instructionStoreSuite(t, () => new MemoryInstructionStore()));
  t.test('run store', async (t) => runStoreSuite(t, () => new MemoryRunStore()));
  t.test('state store', async (t) => stateStoreSuite(t, () => new MemoryStateStore()));
});

// ---- Redis ---------------------------------------------------------------------------------------

/** Every key under the prefix, with its TTL in ms (-1: none). */
async function ttls(client: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const pattern of [`${prefix}:*`, `{${prefix}:g}:*`]) {
    for (const key of await client.keys(pattern)) out[key] = await client.pttl(key);
  }
  return out;
}

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  const freshKeys = () => new Keys(`${redis.prefix}-${n++}`);

  t.test('instruction store', async (t) => {
    instructionStoreSuite(t, () => new InstructionStore(client, freshKeys()));

    t.test('a record lives a day; complete shortens that to minutes', async (t) => {
      const keys = freshKeys();
      const store = new InstructionStore(client, keys);
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
      const store = new InstructionStore(client, keys);
      await store.save(record('i-1', ['a', 'b']));
      await client.del(keys.instruction('i-1')); // what the TTL ending does
      t.equal(await store.finishTask('i-1', 'a', 'applied'), 0);
      await store.complete('i-1');
      t.equal(await client.exists(keys.instruction('i-1')), 0);
      t.same(await ttls(client, keys.prefix), {});
    });

    t.test('no key is left without a TTL', async (t) => {
      const keys = freshKeys();
      const store = new InstructionStore(client, keys);
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

  t.test('instruction store: batch reads and settles', async (t) => {
    t.test('getMany is get for each id, in order, in one pipeline', async (t) => {
      const keys = freshKeys();
      const store = new InstructionStore(client, keys);
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
      const store = new InstructionStore(client, keys);
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
      const store = new InstructionStore(client, keys);
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
      const store = new InstructionStore(client, keys);
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
      const store = new InstructionStore(client, keys);
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
      const store = new MeteredInstructionStore(client, keys, {
        inc: (metric, labels, by) => {
          incs.push([metric, labels, by]);
        },
        observe: (metric, _value, labels) => {
          observed.push([metric, labels]);
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

  t.test('run store', async (t) => {
    runStoreSuite(t, () => new RunStore(client, freshKeys()));

    t.test('setOutcomes: many outcomes of one run at once; never into a run that is gone', async (t) => {
      const keys = freshKeys();
      const store = new RunStore(client, keys);
      await store.create(META);
      await store.setAgents('run-1', ['web-01', 'web-02']);
      await store.setAgentState('run-1', 'web-01', 'dispatched', ['a', 'b']);
      await store.setAgentState('run-1', 'web-02', 'dispatched', ['a']);
      await store.setOutcomes('run-1', [
        { agent: 'web-01', task: 'a', outcome: 'drifted' },
        { agent: 'web-02', task: 'a', outcome: 'satisfied' },
        { agent: 'web-01', task: 'a', outcome: 'applied' },
      ]);
      await store.setOutcomes('run-1', []);
      t.same((await store.get('run-1'))?.results, [
        { agent: 'web-01', task: 'a', outcome: 'applied', execution_id: null },
        { agent: 'web-01', task: 'b', outcome: 'pending', execution_id: null },
        { agent: 'web-02', task: 'a', outcome: 'satisfied', execution_id: null },
      ]);
      await store.setOutcomes('run-gone', [{ agent: 'web-01', task: 'a', outcome: 'applied' }]);
      t.equal(await client.exists(keys.reconcileRun('run-gone')), 0);
    });

    t.test('a run lives a day, and no write leaves a key without a TTL', async (t) => {
      const keys = freshKeys();
      const store = new RunStore(client, keys);
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

  t.test('state store', async (t) => {
    stateStoreSuite(t, () => new RedisStateStore(client, freshKeys()));

    t.test('another replica reads what one saved; each caches the parsed state', async (t) => {
      const keys = freshKeys();
      const a = new RedisStateStore(client, keys);
      const b = new RedisStateStore(client, keys);
      await a.saveGood('aaa', desired('one'), at(1));
      const first = await b.current();
      t.same(first, { revision: 'aaa', state: desired('one') });
      t.equal(await b.current(), first, 'the same object: parsed once per revision');
      // The cache answers without reading the state again …
      await client.del(keys.desiredState('aaa'));
      t.equal(await b.current(), first);
      t.equal(await new RedisStateStore(client, keys).current(), null, '… which a fresh process must');
      // … but follows the status: a revision saved elsewhere replaces it.
      await a.saveGood('bbb', desired('two'), at(2));
      t.same(await b.current(), { revision: 'bbb', state: desired('two') });
    });

    t.test('a superseded state expires; the current one does not', async (t) => {
      const keys = freshKeys();
      const store = new RedisStateStore(client, keys);
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
