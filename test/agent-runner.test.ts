import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createHarness, shell, task, tempDir } from './helpers/agent-harness.js';
import { diesSoon } from './helpers/process-state.js';

/** A step whose check blocks until killed, after saying so on stdout. */
const blocking = (name: string) => shell(name, 'echo started; exec sleep 300', 'true');

t.test('the same instruction id runs once, even when re-delivered later', async (t) => {
  const dir = tempDir(t);
  const h = createHarness();
  const run = task('count', [
    shell('append', 'false', `echo ran >> ${dir}/count`, { on_failure: 'continue' }),
  ]);
  t.equal(h.send('instr-1', [run]).accepted, true);
  const whileRunning = h.send('instr-1', [run]);
  t.equal(whileRunning.accepted, false);
  t.match(whileRunning.reason, /duplicate instruction instr-1/);
  t.equal(whileRunning.code, 'duplicate');
  await h.runner.idle();
  const later = h.send('instr-1', [run]);
  t.equal(later.accepted, false, 'still refused after it finished');
  await h.runner.idle();
  t.equal(readFileSync(join(dir, 'count'), 'utf8'), 'ran\n', 'applied exactly once');
  t.equal(h.results.filter((r) => r.type === 'task_result').length, 1);
});

t.test('at most one execution per task at a time', async (t) => {
  const h = createHarness();
  const first = task('web', [blocking('wait')]);
  t.equal(h.send('instr-a', [first]).accepted, true);
  await h.waitForOutput((o) => o.execution_id === first.execution_id && o.line === 'started');
  t.same(h.runner.runningInstructions(), ['instr-a']);

  const busy = h.send('instr-b', [
    task('db', [shell('x', 'true', 'true')]),
    task('web', [shell('y', 'true', 'true')]),
  ]);
  t.equal(busy.accepted, false);
  t.match(busy.reason, /task web is already executing \(instruction instr-a\)/);
  t.equal(busy.code, 'busy');
  const other = task('db', [shell('x', 'true', 'true')]);
  t.equal(h.send('instr-c', [other]).accepted, true, 'another task runs side by side');
  await h.waitForResult((r) => r.type === 'task_result' && r.execution_id === other.execution_id);

  h.runner.cancel({ instruction_id: 'instr-a', execution_id: null, reason: 'test over' });
  await h.runner.idle();
  t.equal(
    h.send('instr-b', [task('web', [shell('y', 'true', 'true')])]).accepted,
    true,
    'a refused id may come back',
  );
  await h.runner.idle();
});

t.test('cancel kills running commands and skips the rest', async (t) => {
  const dir = tempDir(t);
  const h = createHarness();
  const t1 = task('one', [
    shell('hang', `sleep 300 & echo $! > ${dir}/pid; echo started; wait`, 'true'),
    shell('after', `touch ${dir}/after`, 'true'),
  ]);
  const t2 = task('two', [shell('never', `touch ${dir}/never`, 'true')]);
  h.send('instr-x', [t1, t2]);
  await h.waitForOutput((o) => o.execution_id === t1.execution_id && o.line === 'started');
  t.ok(h.runner.cancel({ instruction_id: 'instr-x', execution_id: null, reason: 'operator said stop' }));
  await h.runner.idle();

  const r1 = h.taskResult(t1.execution_id);
  t.equal(r1.outcome, 'failed', 'interrupted mid-step');
  t.match(r1.steps[0], { outcome: 'failed', error: /cancelled: operator said stop/ });
  t.match(r1.steps[1], { outcome: 'skipped', error: /cancelled: operator said stop/ });
  const r2 = h.taskResult(t2.execution_id);
  t.equal(r2.outcome, 'skipped', 'a task that never started is skipped');
  t.notOk(existsSync(join(dir, 'after')) || existsSync(join(dir, 'never')));
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
  t.ok(await diesSoon(pid), 'the grandchild was killed with the group');
  t.notOk(
    h.runner.cancel({ instruction_id: 'instr-x', execution_id: null, reason: 'again' }),
    'nothing left to cancel',
  );
});

t.test('cancel of one execution leaves the others alone', async (t) => {
  const dir = tempDir(t);
  const h = createHarness();
  const t1 = task('one', [blocking('hang')]);
  const t2 = task('two', [shell('mark', `test -f ${dir}/two`, `touch ${dir}/two`)]);
  h.send('instr-y', [t1, t2]);
  await h.waitForOutput((o) => o.execution_id === t1.execution_id && o.line === 'started');
  h.runner.cancel({ instruction_id: 'instr-y', execution_id: t1.execution_id, reason: 'just this one' });
  await h.runner.idle();
  t.equal(h.taskResult(t1.execution_id).outcome, 'failed');
  t.equal(h.taskResult(t2.execution_id).outcome, 'applied');
});

t.test('shutdown refuses new work and cancels running work', async (t) => {
  const h = createHarness();
  const run = task('long', [blocking('hang')]);
  h.send('instr-z', [run]);
  await h.waitForOutput((o) => o.execution_id === run.execution_id && o.line === 'started');
  await h.runner.shutdown();
  t.match(h.taskResult(run.execution_id).steps[0], { outcome: 'failed', error: /agent shutting down/ });
  t.match(h.send('instr-after', [task('x', [])]), {
    accepted: false,
    code: 'shutting_down',
    reason: /shutting down/,
  });
});
