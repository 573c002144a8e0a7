/**
 * Batched results jobs on in-memory fakes: a whole instruction in one job, alerts and episodes
 * inside a batch, another agent's result (dropped), busy and refused receipts inside a batch.
 * test/results-batch.test.ts compares the two paths on a mixed scenario, also on Redis.
 */
import t from 'tap';
import { resultsHandler } from '../reconciler/handlers/result.js';
import type { ResultJob } from '../shared/jobs/payloads.js';
import type { DriftPolicy, RunMode } from '../shared/types.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';
import { alertSummary, batchOf, distinct, instruction, resultWorld } from './helpers/handler-worlds.js';
import { receipt, taskResult } from './helpers/reconciler-fakes.js';

t.test('resultsHandler (batched results jobs)', async (t) => {
  t.test(
    'a whole instruction in one job: same events, statuses, alerts and progress as one by one',
    async (t) => {
      const tasks: [string, RunMode, DriftPolicy][] = [
        ['db_backup', 'apply', 'remediate_and_alert'],
        ['web_config', 'apply', 'remediate'],
        ['motd', 'check', 'alert_only'],
      ];
      const messages = (record: InstructionRecord) => [
        receipt(record, true, null),
        taskResult(record, 'db_backup', 'applied', [['timer', 'applied', 0]]),
        taskResult(record, 'web_config', 'satisfied', [['config', 'satisfied', null]]),
        taskResult(record, 'motd', 'drifted', [['motd', 'drifted', null]]),
      ];
      const single = resultWorld();
      const r1 = await single.dispatch(instruction('i-1', { run_id: 'run-1', tasks }));
      for (const job of messages(r1)) await single.handle(job);
      const batched = resultWorld();
      const r2 = await batched.dispatch(instruction('i-1', { run_id: 'run-1', tasks }));
      t.same(await resultsHandler(batchOf(...messages(r2)), batched.deps), {
        accepted: 1,
        applied: 1,
        satisfied: 1,
        drifted: 1,
      });
      t.same(await batched.allEvents(), await single.allEvents(), 'the same events');
      t.equal((await batched.allEvents()).length, 3);
      t.same(await batched.statuses.listStatuses('web-01'), await single.statuses.listStatuses('web-01'));
      t.same(await batched.statuses.listProblems(), await single.statuses.listProblems());
      for (const [task] of tasks) {
        t.same(
          await batched.statuses.getEpisode('web-01', task),
          await single.statuses.getEpisode('web-01', task),
          `episode of ${task}`,
        );
      }
      t.same(batched.alerts, single.alerts, 'the same alerts, in the same order');
      t.same(alertSummary(batched.alerts), [
        ['drift_detected', 'in_progress', ['timer']],
        ['drift_remediated', 'remediated', ['timer']],
        ['drift_detected', 'pending_manual', ['motd']],
      ]);
      t.same((await batched.instructions.get('i-1'))?.pending, []);
      t.ok(batched.instructions.completed.includes('i-1'));
      t.same(await batched.runs.get('run-1'), await single.runs.get('run-1'));

      // Redelivered (at-least-once) and a message re-sent inside a later batch: nothing changes.
      const events = await batched.allEvents();
      const statuses = await batched.statuses.listStatuses('web-01');
      const alerts = [...batched.alerts];
      batched.advance(1000);
      await resultsHandler(batchOf(...messages(r2)), batched.deps);
      await resultsHandler(batchOf(messages(r2)[3] as ResultJob, messages(r2)[3] as ResultJob), batched.deps);
      t.same(await batched.allEvents(), events, 'no event twice');
      t.same(await batched.statuses.listStatuses('web-01'), statuses, 'statuses as first judged');
      t.same(distinct(batched.alerts), distinct(alerts), 'no new alert id');
    },
  );

  t.test(
    'several agents and instructions in one job; a failing agent fails the job, others still done',
    async (t) => {
      const w = resultWorld();
      const a = await w.dispatch(instruction('i-1', { tasks: [['motd', 'check', 'alert_only']] }));
      const b = await w.dispatch(
        instruction('i-2', { agent: 'db-01', tasks: [['db_backup', 'apply', 'remediate_and_alert']] }),
      );
      w.statuses.failMarkAlerted = 1;
      const job = batchOf(
        taskResult(a, 'motd', 'drifted', [['motd', 'drifted', null]]),
        taskResult(b, 'db_backup', 'satisfied', [['timer', 'satisfied', null]]),
      );
      await t.rejects(resultsHandler(job, w.deps), /worker killed/);
      t.match(
        await w.statuses.getStatus('db-01', 'db_backup'),
        { outcome: 'satisfied' },
        'the other agent is done',
      );
      t.equal(await w.statuses.getStatus('web-01', 'motd'), null, 'no status before its alert is claimed');
      t.same((await w.instructions.get('i-1'))?.pending, ['motd'], 'the failed task stays pending');
      // The retry finishes it, once.
      t.same(await resultsHandler(job, w.deps), { drifted: 1, satisfied: 1 });
      t.match(await w.statuses.getStatus('web-01', 'motd'), { outcome: 'drifted', execution_id: 'i-1.0' });
      t.equal(distinct(w.alerts).length, 1);
      t.ok(w.instructions.completed.includes('i-1'));
      t.ok(w.instructions.completed.includes('i-2'));
      t.equal((await w.allEvents()).length, 2);
    },
  );

  t.test('a result sent by another agent is dropped on both paths, nothing written', async (t) => {
    const run = async (batched: boolean) => {
      const w = resultWorld();
      const record = await w.dispatch(instruction('i-1', { tasks: [['motd', 'check', 'alert_only']] }));
      const job = taskResult(record, 'motd', 'drifted', [['motd', 'drifted', null]]);
      if (job.kind !== 'result') throw new Error('unexpected');
      const foreign = { ...job, agent: 'db-01' };
      const outcome = batched ? await resultsHandler(batchOf(foreign), w.deps) : await w.handle(foreign);
      return {
        outcome,
        web: await w.statuses.listStatuses('web-01'),
        db: await w.statuses.listStatuses('db-01'),
        episode: await w.statuses.getEpisode('web-01', 'motd'),
        events: (await w.allEvents()).length,
        pending: w.instructions.completed.includes('i-1'),
      };
    };
    const single = await run(false);
    t.same(single, {
      outcome: 'foreign_instruction',
      web: [],
      db: [],
      episode: null,
      events: 0,
      pending: false,
    });
    t.same(await run(true), { ...single, outcome: { foreign_instruction: 1 } });
  });

  t.test('a busy receipt and a refusal inside a batch', async (t) => {
    const w = resultWorld();
    const busy = await w.dispatch(
      instruction('i-1', { trigger: 'manual', tasks: [['motd', 'apply', 'alert_only']] }),
    );
    const refused = await w.dispatch(instruction('i-2', { tasks: [['web_config', 'apply', 'remediate']] }));
    t.same(
      await resultsHandler(
        batchOf(
          receipt(busy, false, 'task "motd" is already executing (instruction i-0)'),
          receipt(refused, false, 'bad revision'),
          taskResult(refused, 'web_config', 'applied', [['config', 'applied', 0]]),
        ),
        w.deps,
      ),
      { busy: 1, refused: 1, unknown_instruction: 1 },
    );
    t.equal(w.retries.length, 1);
    t.equal(w.instructions.taskState('i-1', 'motd'), 'requeued');
    t.equal(w.instructions.taskState('i-2', 'web_config'), 'undeliverable');
    t.ok(w.instructions.completed.includes('i-1'));
    t.ok(w.instructions.completed.includes('i-2'));
    t.match(await w.allEvents(), [{ kind: 'undeliverable', task: 'web_config' }]);
  });
});
