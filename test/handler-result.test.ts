/**
 * The single-message result handler on in-memory fakes: events, statuses, episodes, alerts, run
 * progress and finished tasks for each kind of message, receipts (busy, refused, duplicate) and
 * undeliverable instructions; redelivered jobs change nothing.
 */
import t from 'tap';
import type { ResultJob } from '../shared/jobs/payloads.js';
import type { RefusalCode } from '../shared/protocol.js';
import { BUSY_RETRIES, BUSY_RETRY_MS } from '../shared/result-rules.js';
import {
  alertSummary,
  distinct,
  instruction,
  resultWorld,
  taskResultStep,
} from './helpers/handler-worlds.js';
import { checkResult, receipt, resultJob, taskResult } from './helpers/reconciler-fakes.js';

// ---- results -------------------------------------------------------------------------------------

t.test('resultHandler', async (t) => {
  t.test('a task_result: one event, status, run progress; delivered twice changes nothing', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', { run_id: 'run-1', tasks: [['web_config', 'apply', 'remediate_and_alert']] }),
    );
    const job = taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]]);
    t.equal(await w.handle(job), 'applied');
    const status = await w.statuses.getStatus('web-01', 'web_config');
    const events = await w.allEvents();
    const alerts = [...w.alerts];
    w.advance(1000);
    t.equal(await w.handle(job), 'applied');
    t.same(await w.allEvents(), events, 'still one event');
    t.equal(events.length, 1);
    t.match(events[0], {
      kind: 'task_run',
      id: 'task_run:i-1.0',
      agent: 'web-01',
      labels: { role: 'web', env: 'prod' },
      task: 'web_config',
      revision: 'c0ffee',
      trigger: 'commit',
      mode: 'apply',
      policy: 'remediate_and_alert',
      instruction_id: 'i-1',
      execution_id: 'i-1.0',
      outcome: 'applied',
      steps: [{ step: 'config', outcome: 'applied' }],
    });
    t.same(await w.statuses.getStatus('web-01', 'web_config'), status, 'the status is as first judged');
    t.match(status, {
      outcome: 'applied',
      execution_id: 'i-1.0',
      drifted_steps: ['config'],
      failed_steps: [],
    });
    t.same(w.alerts, alerts, 'no alert twice');
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'in_progress', ['config']],
      ['drift_remediated', 'remediated', ['config']],
    ]);
    t.equal(await w.statuses.getEpisode('web-01', 'web_config'), null, 'the episode closed');
    t.same((await w.instructions.get('i-1'))?.pending, []);
    t.ok(w.instructions.completed.includes('i-1'));
    const run = await w.runs.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'web_config', outcome: 'applied', execution_id: 'i-1.0' },
    ]);
    t.equal(run?.done, true);
    t.equal(run?.summary.succeeded, 1);
  });

  t.test(
    'a worker killed between enqueueing an alert and claiming it: the retry re-sends the same id',
    async (t) => {
      const w = resultWorld();
      const record = await w.dispatch(
        instruction('i-1', { tasks: [['web_config', 'apply', 'remediate_and_alert']] }),
      );
      const job = taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]]);
      w.statuses.failMarkAlerted = 1;
      await t.rejects(w.handle(job), /worker killed/);
      t.equal(await w.handle(job), 'applied');
      t.equal(await w.handle(job), 'applied');
      t.equal(w.alerts.length, 3, 'drift_detected enqueued twice, drift_remediated once');
      t.equal(distinct(w.alerts).length, 2, 'but under one id each, so the queue keeps one');
      t.same(
        w.alerts.map((a) => a.payload.event),
        ['drift_detected', 'drift_detected', 'drift_remediated'],
      );
      t.equal((await w.allEvents()).length, 1);
      t.match(await w.statuses.getStatus('web-01', 'web_config'), {
        outcome: 'applied',
        execution_id: 'i-1.0',
      });
    },
  );

  t.test('alert_only drift: drift_detected once, however many checks find it', async (t) => {
    const w = resultWorld();
    for (let i = 1; i <= 3; i++) {
      const record = await w.dispatch(
        instruction(`i-${i}`, { trigger: 'drift_check', tasks: [['motd', 'check', 'alert_only']] }),
      );
      t.equal(await w.handle(taskResult(record, 'motd', 'drifted', [['motd', 'drifted', null]])), 'drifted');
      w.advance(60_000);
    }
    t.equal((await w.allEvents()).length, 1, 'the same drift found again is a quiet check');
    t.equal(w.alerts.length, 1);
    t.match(w.alerts[0]?.payload, {
      event: 'drift_detected',
      timestamp: '2025-03-13T14:22:01Z',
      agent: { name: 'web-01', labels: { role: 'web', env: 'prod' } },
      task: 'motd',
      policy: 'alert_only',
      remediation_status: 'pending_manual',
      revision: 'c0ffee',
      drifted_steps: ['motd'],
    });
    t.match(await w.statuses.listProblems(), [
      { agent: 'web-01', status: { task: 'motd', outcome: 'drifted' } },
    ]);
    t.match(await w.statuses.getEpisode('web-01', 'motd'), { id: 'i-1.0', alerts: ['drift_detected'] });
    // A manual reconcile applies it: the episode closes with its all-clear.
    const manual = await w.dispatch(
      instruction('i-4', { trigger: 'manual', tasks: [['motd', 'apply', 'alert_only']] }),
    );
    await w.handle(taskResult(manual, 'motd', 'applied', [['motd', 'applied', 0]]));
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'pending_manual', ['motd']],
      ['drift_remediated', 'remediated', ['motd']],
    ]);
    t.same(await w.statuses.listProblems(), []);
  });

  t.test(
    'quiet checks: a satisfied drift check after a satisfied run at the same revision records no event',
    async (t) => {
      const w = resultWorld();
      const run = async (
        id: string,
        trigger: 'drift_check' | 'commit' | 'manual',
        outcome: 'satisfied' | 'drifted',
      ) => {
        const record = await w.dispatch(
          instruction(id, { trigger, tasks: [['motd', 'check', 'alert_only']] }),
        );
        await w.handle(taskResult(record, 'motd', outcome, [['motd', outcome, null]]));
        w.advance(60_000);
      };
      await run('i-1', 'drift_check', 'satisfied'); // first ever: recorded
      await run('i-2', 'drift_check', 'satisfied'); // quiet
      await run('i-3', 'drift_check', 'satisfied'); // quiet
      t.equal((await w.allEvents()).length, 1, 'only the first satisfied check is an event');
      t.match(await w.statuses.getStatus('web-01', 'motd'), { outcome: 'satisfied', execution_id: 'i-3.0' });
      await run('i-4', 'manual', 'satisfied'); // manual runs are always recorded
      await run('i-5', 'drift_check', 'drifted'); // a change is recorded
      await run('i-6', 'drift_check', 'drifted'); // the same drift again: quiet
      await run('i-7', 'drift_check', 'satisfied'); // the way back is recorded
      await run('i-8', 'drift_check', 'satisfied'); // quiet again
      t.same((await w.allEvents()).map((e) => ('execution_id' in e ? e.execution_id : '')).sort(), [
        'i-1.0',
        'i-4.0',
        'i-5.0',
        'i-7.0',
      ]);
    },
  );

  t.test('remediate_and_alert: drift_detected, then drift_remediated; remediate: silent', async (t) => {
    const w = resultWorld();
    const loud = await w.dispatch(
      instruction('i-1', {
        trigger: 'drift_check',
        tasks: [
          ['db_backup', 'apply', 'remediate_and_alert'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    await w.handle(taskResult(loud, 'db_backup', 'applied', [['timer', 'applied', 0]]));
    await w.handle(taskResult(loud, 'web_config', 'applied', [['config', 'applied', 0]]));
    t.same(
      w.alerts.map((a) => [a.payload.task, a.payload.event, a.payload.remediation_status]),
      [
        ['db_backup', 'drift_detected', 'in_progress'],
        ['db_backup', 'drift_remediated', 'remediated'],
      ],
    );
    t.same(
      w.alerts.map((a) => a.episode_id),
      ['i-1.0', 'i-1.0'],
    );
    t.equal((await w.allEvents()).length, 2);
    t.ok(w.instructions.completed.includes('i-1'), 'both tasks in: the instruction is complete');
  });

  t.test('a failed remediation alerts remediation_failed', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', { tasks: [['db_backup', 'apply', 'remediate_and_alert']] }),
    );
    await w.handle(taskResult(record, 'db_backup', 'failed', [['timer', 'failed', 1]]));
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'in_progress', ['timer']],
      ['remediation_failed', 'failed', ['timer']],
    ]);
  });

  t.test('busy: the reconcile is put back with retry + 1, its tasks re-queued', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        trigger: 'manual',
        run_id: 'run-1',
        retry: 4,
        tasks: [
          ['motd', 'apply', 'alert_only'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    const busy = receipt(record, false, 'task "motd" is already executing (instruction i-0)');
    t.equal(await w.handle(busy), 'busy');
    t.same(w.retries, [
      {
        job: { agent: 'web-01', trigger: 'manual', run_id: 'run-1', tasks: ['motd', 'web_config'], retry: 5 },
        delayMs: BUSY_RETRY_MS,
      },
    ]);
    t.same((await w.instructions.get('i-1'))?.pending, []);
    t.equal(w.instructions.taskState('i-1', 'motd'), 'requeued');
    t.ok(w.instructions.completed.includes('i-1'));
    t.same(await w.allEvents(), [], 'no event: nothing ran, nothing failed');
    const run = await w.runs.get('run-1');
    t.equal(run?.done, false, 'the run waits for the retry');
    t.equal(run?.summary.pending, 2);

    t.equal(await w.handle(busy), 'busy', 'the same receipt delivered again');
    t.equal(w.retries.length, 1, 'is not put back twice');
  });

  t.test('busy past the retry budget: undeliverable events', async (t) => {
    const w = resultWorld();
    const exhausted = await w.dispatch(
      instruction('i-1', { trigger: 'manual', run_id: 'run-1', retry: BUSY_RETRIES }),
    );
    const busy = receipt(exhausted, false, 'task "web_config" is already executing');
    t.equal(await w.handle(busy), 'refused');
    t.equal(await w.handle(busy), 'refused', 'delivered twice');
    t.same(w.retries, []);
    t.same(
      (await w.allEvents()).map((e) => [e.kind, e.id, e.kind === 'undeliverable' ? e.reason : '']),
      [['undeliverable', 'undeliverable:i-1.0', 'refused: task "web_config" is already executing']],
    );
    const run = await w.runs.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'web_config', outcome: 'undeliverable', execution_id: 'i-1.0' },
    ]);
    t.equal(run?.done, true);
    t.ok(w.instructions.completed.includes('i-1'));
    t.equal(await w.statuses.getStatus('web-01', 'web_config'), null, 'no status: nothing was judged');
  });

  t.test('a drift check refused as busy is skipped quietly: the running apply will report', async (t) => {
    const w = resultWorld();
    const drift = await w.dispatch(instruction('i-2', { trigger: 'drift_check' }));
    t.equal(await w.handle(receipt(drift, false, 'task "web_config" is already executing')), 'busy_skipped');
    t.same(w.retries, []);
    t.same(await w.allEvents(), []);
    t.same((await w.instructions.get('i-2'))?.pending, []);
    t.equal(w.instructions.taskState('i-2', 'web_config'), 'requeued');
    t.ok(w.instructions.completed.includes('i-2'));
  });

  t.test('a duplicate refusal (the agent already has the id) and an acceptance change nothing', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1', { run_id: 'run-1' }));
    t.equal(await w.handle(receipt(record, false, 'duplicate instruction id i-1')), 'duplicate');
    t.equal(await w.handle(receipt(record, true, null)), 'accepted');
    t.same((await w.instructions.get('i-1'))?.pending, ['web_config']);
    t.same(await w.allEvents(), []);
    t.same(w.retries, []);
    t.equal((await w.runs.get('run-1'))?.summary.pending, 1);
  });

  t.test('a refusal is classified by its code; the text counts only without one', async (t) => {
    const w = resultWorld();
    const coded = (job: ResultJob, code: RefusalCode): ResultJob =>
      job.kind === 'result' && job.message.type === 'instruction_receipt'
        ? { ...job, message: { ...job.message, code } }
        : job;
    const busy = await w.dispatch(instruction('i-1'));
    t.equal(await w.handle(coded(receipt(busy, false, 'come back later'), 'busy')), 'busy');
    t.match(w.retries, [{ job: { agent: 'web-01', retry: 1 }, delayMs: BUSY_RETRY_MS }]);
    const stopping = await w.dispatch(instruction('i-2'));
    const looksDuplicate = receipt(stopping, false, 'duplicate-looking text');
    t.equal(await w.handle(coded(looksDuplicate, 'shutting_down')), 'refused', 'the code wins over the text');
    t.match(await w.allEvents(), [{ kind: 'undeliverable', reason: 'refused: duplicate-looking text' }]);
    const seen = await w.dispatch(instruction('i-3'));
    t.equal(await w.handle(coded(receipt(seen, false, 'no words'), 'duplicate')), 'duplicate');
    t.same((await w.instructions.get('i-3'))?.pending, ['web_config']);
  });

  t.test('an undeliverable instruction: one event per pending task, and run progress', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        run_id: 'run-1',
        tasks: [
          ['motd', 'check', 'alert_only'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    await w.handle(taskResult(record, 'motd', 'satisfied', [['motd', 'satisfied', null]]));
    const job = {
      kind: 'undeliverable',
      agent: 'web-01',
      instruction_id: 'i-1',
      reason: 'gateway gw-1 gone',
    } as const;
    t.equal(await w.handle(job), 'undeliverable');
    t.equal(await w.handle(job), 'undeliverable', 'delivered twice');
    const events = await w.allEvents();
    t.same(events.map((e) => [e.kind, e.task]).sort(), [
      ['task_run', 'motd'],
      ['undeliverable', 'web_config'],
    ]);
    t.match(
      events.find((e) => e.kind === 'undeliverable'),
      { reason: 'gateway gw-1 gone', mode: 'apply', execution_id: 'i-1.1', policy: 'remediate' },
    );
    const run = await w.runs.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'motd', outcome: 'satisfied', execution_id: 'i-1.0' },
      { agent: 'web-01', task: 'web_config', outcome: 'undeliverable', execution_id: 'i-1.1' },
    ]);
    t.equal(run?.done, true);
  });

  t.test('results for an unknown instruction are ignored', async (t) => {
    const w = resultWorld();
    const record = instruction('i-gone', { run_id: 'run-1' });
    t.equal(
      await w.handle(taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]])),
      'unknown_instruction',
    );
    t.equal(
      await w.handle({ kind: 'undeliverable', agent: 'web-01', instruction_id: 'i-gone', reason: 'x' }),
      'unknown_instruction',
    );
    t.same(await w.allEvents(), []);
    t.equal(await w.statuses.getStatus('web-01', 'web_config'), null);
    t.equal(await w.runs.get('run-1'), null);
  });

  t.test('progress, and results for a task the instruction does not have', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1'));
    const other = instruction('i-1', { tasks: [['elsewhere', 'apply', 'remediate']] });
    t.equal(await w.handle(taskResult(other, 'elsewhere', 'applied', [['x', 'applied', 0]])), 'unknown_task');
    t.equal(
      await w.handle(
        resultJob(record, {
          type: 'step_result',
          result_id: 'r-s',
          instruction_id: 'i-1',
          execution_id: 'i-1.0',
          task: 'web_config',
          result: taskResultStep(),
        }),
      ),
      'progress',
    );
    t.same(await w.allEvents(), []);
    t.same((await w.instructions.get('i-1'))?.pending, ['web_config']);
  });

  t.test('a failed check in apply mode with an alerting policy alerts before the apply ends', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        tasks: [
          ['db_backup', 'apply', 'remediate_and_alert'],
          ['motd', 'check', 'alert_only'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    for (const [i, task, step] of [
      [0, 'db_backup', 'timer'],
      [1, 'motd', 'motd'],
      [2, 'web_config', 'config'],
    ] as const) {
      t.equal(await w.handle(checkResult(record, `i-1.${i}`, task, step, false)), 'check');
    }
    t.same(
      alertSummary(w.alerts),
      [['drift_detected', 'in_progress', ['timer']]],
      'only the apply that alerts',
    );
    t.equal(w.alerts[0]?.payload.task, 'db_backup');
    t.equal(await w.statuses.getStatus('web-01', 'db_backup'), null, 'the status waits for the result');
    t.same(await w.allEvents(), [], 'a check is not an event');
    t.same((await w.instructions.get('i-1'))?.pending, ['db_backup', 'motd', 'web_config']);
    // The apply ends: the all-clear follows, drift_detected is not repeated.
    await w.handle(taskResult(record, 'db_backup', 'applied', [['timer', 'applied', 0]]));
    t.same(
      w.alerts.map((a) => a.payload.event),
      ['drift_detected', 'drift_remediated'],
    );
    t.equal(distinct(w.alerts).length, 2);
  });
});
