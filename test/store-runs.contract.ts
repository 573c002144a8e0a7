/**
 * The run store contract (store/runs/run-store.ts), run against the memory twin and the Redis
 * implementation by store-runs.test.ts.
 */
import type { Test } from 'tap';
import type { RunMeta, RunStore } from '../store/runs/run-store.js';

const T0 = Date.parse('2025-03-13T14:22:01.000Z');

export const META: RunMeta = {
  id: 'run-1',
  target: 'all',
  name: null,
  created_at: new Date(T0).toISOString(),
};

export function runStoreContract(t: Test, make: () => RunStore) {
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

  t.test('setOutcomes: many outcomes of one run at once; never into a run that is gone', async (t) => {
    const store = make();
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
    t.equal(await store.get('run-gone'), null);
  });
}
