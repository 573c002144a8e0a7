/**
 * Timing out an instruction's pending tasks: events, status, run progress, alerts; a late result.
 */
import t from 'tap';
import { timeOutTasks } from '../reconciler/handlers/result.js';
import { alertSummary, instruction, resultWorld, T0 } from './helpers/handler-worlds.js';
import { checkResult, taskResult } from './helpers/reconciler-fakes.js';

t.test('timeOutTasks', async (t) => {
  t.test('pending tasks become timeouts: events, status, run progress, once', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        run_id: 'run-1',
        tasks: [
          ['db_backup', 'apply', 'remediate_and_alert'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    await w.handle(taskResult(record, 'web_config', 'satisfied', [['config', 'satisfied', null]]));
    await timeOutTasks(w.deps, record, ['db_backup'], 30_000);
    await timeOutTasks(w.deps, record, ['db_backup'], 35_000);
    const timeouts = (await w.allEvents()).filter((e) => e.kind === 'timeout');
    t.equal(timeouts.length, 1, 'a repeated timeout is the same event');
    t.match(timeouts[0], { id: 'timeout:i-1.0', task: 'db_backup', outcome: 'timeout', waited_ms: 30_000 });
    t.match(await w.statuses.getStatus('web-01', 'db_backup'), { outcome: 'timeout', execution_id: 'i-1.0' });
    t.match(await w.statuses.getStatus('web-01', 'web_config'), { outcome: 'satisfied' });
    t.same(w.alerts, [], 'a timeout with no known drift does not alert');
    const run = await w.runs.get('run-1');
    t.equal(run?.summary.timed_out, 1);
    t.equal(run?.summary.succeeded, 1);
    t.equal(run?.done, true);
    t.ok(w.instructions.completed.includes('i-1'));
  });

  t.test('a late result after its timeout still counts', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1', { run_id: 'run-1' }));
    await timeOutTasks(w.deps, record, ['web_config'], 30_000);
    t.equal(
      await w.handle(taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]])),
      'applied',
    );
    t.match(await w.statuses.getStatus('web-01', 'web_config'), {
      outcome: 'applied',
      execution_id: 'i-1.0',
    });
    t.same((await w.runs.get('run-1'))?.results, [
      { agent: 'web-01', task: 'web_config', outcome: 'applied', execution_id: 'i-1.0' },
    ]);
  });

  t.test('a newer status stands: an instruction the agent never got times out quietly', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1', { run_id: 'run-1' }));
    // The agent's connect check on its new session, issued 1 s before i-1 (a stale registry read
    // routed i-1 to the old session): satisfied.
    const newer = {
      task: 'web_config',
      outcome: 'satisfied' as const,
      mode: 'apply' as const,
      revision: 'c0ffee',
      execution_id: 'i-2.0',
      at: new Date(T0 + 500).toISOString(),
      drifted_steps: [],
      failed_steps: [],
      policy: 'remediate' as const,
      issued_at: new Date(T0 - 1000).toISOString(),
    };
    await w.statuses.setStatus('web-01', newer);
    const session = (session_id: string) => async () => ({ session_id, connected_at: T0 - 2000 });
    await timeOutTasks({ ...w.deps, sessionOf: session('s-web-01') }, record, ['web_config'], 30_000);
    t.match(
      await w.statuses.getStatus('web-01', 'web_config'),
      { outcome: 'timeout', execution_id: 'i-1.0' },
      'same session: issued before i-1, so i-1 may really hang: a timeout',
    );

    const w2 = resultWorld();
    const again = await w2.dispatch(instruction('i-1', { run_id: 'run-1' }));
    await w2.statuses.setStatus('web-01', newer);
    await timeOutTasks({ ...w2.deps, sessionOf: session('s-new') }, again, ['web_config'], 30_000);
    t.same(
      await w2.statuses.getStatus('web-01', 'web_config'),
      newer,
      'another session since: the status stands',
    );
    t.same(
      (await w2.allEvents()).filter((e) => e.kind === 'timeout'),
      [],
      'no timeout event next to the newer result',
    );
    t.same(w2.alerts, []);
    const run = await w2.runs.get('run-1');
    t.equal(run?.summary.timed_out, 1, 'the run still says that execution timed out');
    t.ok(w2.instructions.completed.includes('i-1'), 'and the instruction is complete');
  });

  t.test('a timeout of an apply with known drift alerts remediation_failed', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', { tasks: [['db_backup', 'apply', 'remediate_and_alert']] }),
    );
    await w.handle(checkResult(record, 'i-1.0', 'db_backup', 'timer', false));
    await timeOutTasks(w.deps, record, ['db_backup'], 30_000);
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'in_progress', ['timer']],
      ['remediation_failed', 'failed', ['timer']],
    ]);
  });
});
