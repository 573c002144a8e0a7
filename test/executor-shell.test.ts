import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCommand } from '../agent/run-command.js';
import { createHarness, shell, task, tempDir } from './helpers/agent-harness.js';
import { diesSoon } from './helpers/process-state.js';

t.test('steps run in order: check, apply, re-check; env and working_dir apply', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'log');
  const h = createHarness();
  const run = task('deploy', [
    shell('first', `test -f ${dir}/first`, `echo first >> ${log}; touch ${dir}/first`),
    shell('env', 'test "$GREETING" = "hello world" && test -n "$PATH"', 'false', {
      env: { GREETING: 'hello world' },
    }),
    shell('cwd', `test "$(pwd)" = "${dir}" && test ! -f marker`, 'exit 1', { working_dir: dir }),
    shell('home', `test "$(pwd)" = "${homedir()}"`, 'exit 1'),
    shell('second', 'test -f second', `echo second >> ${log}; touch second`, { working_dir: dir }),
  ]);
  const result = await h.runTask(run);
  t.equal(result.outcome, 'applied');
  t.same(
    result.steps.map((s) => [s.step, s.outcome]),
    [
      ['first', 'applied'],
      ['env', 'satisfied'],
      ['cwd', 'satisfied'],
      ['home', 'satisfied'],
      ['second', 'applied'],
    ],
  );
  t.equal(readFileSync(log, 'utf8'), 'first\nsecond\n', 'applies ran in declaration order');
  t.equal(result.steps[0]?.exit_code, 0, 'exit code of the re-check');
  t.equal(result.steps[0]?.apply_exit_code, 0);
  t.equal(result.steps[1]?.apply_exit_code, null, 'no apply for a satisfied step');
  t.ok(result.duration_ms >= 0 && Date.parse(result.finished_at) >= Date.parse(result.started_at));

  const kinds = h.results.filter((r) => r.execution_id === run.execution_id).map((r) => r.type);
  t.same(
    kinds,
    [
      'check_result', // first: drift, an apply follows
      'step_result', // first, as env starts
      'step_result', // env, as cwd starts
      'step_result', // cwd, as home starts
      'step_result', // home, as second starts
      'check_result', // second: drift, an apply follows
      'task_result', // carries second's step result
    ],
    'a check result only before an apply; a step result as the next step starts; the task result last',
  );
  const checks = h.checkResults(run.execution_id);
  t.same(
    checks.map((c) => [c.step, c.satisfied]),
    [
      ['first', false],
      ['second', false],
    ],
    'check results report the first check of the steps that are applied',
  );
  t.ok(new Set(h.results.map((r) => r.result_id)).size === h.results.length, 'every result has its own id');
  t.equal(h.receipts[0]?.accepted, true);
});

t.test('mode check reports drift and never applies', async (t) => {
  const dir = tempDir(t);
  const h = createHarness();
  const result = await h.runTask(
    task(
      'audit',
      [shell('missing', `test -f ${dir}/x`, `touch ${dir}/x`), shell('ok', 'true', 'false')],
      'check',
    ),
  );
  t.equal(result.outcome, 'drifted');
  t.same(
    result.steps.map((s) => s.outcome),
    ['drifted', 'satisfied'],
    'drift does not stop the checks',
  );
  t.notOk(existsSync(join(dir, 'x')));
  t.equal(result.steps[0]?.exit_code, 1);
});

t.test('on_failure abort skips the rest; continue goes on', async (t) => {
  const dir = tempDir(t);
  const h = createHarness();
  const abortRun = task('a', [
    shell('broken', 'false', 'echo boom >&2; exit 3'),
    shell('later', `test -f ${dir}/later`, `touch ${dir}/later`),
  ]);
  const aborted = await h.runTask(abortRun);
  t.equal(aborted.outcome, 'failed');
  t.match(aborted.steps[0], {
    outcome: 'failed',
    apply_exit_code: 3,
    exit_code: 3,
    error: /exited with code 3/,
  });
  t.match(aborted.steps[0]?.output_tail, /boom/);
  t.match(aborted.steps[1], { outcome: 'skipped', exit_code: null, error: /broken failed/ });
  t.notOk(existsSync(join(dir, 'later')), 'the skipped step did not run');
  t.equal(
    h.stepResults(aborted.steps.length ? h.results.at(-1)!.execution_id : '').length,
    0,
    'no step_result for skipped steps, nor for the last one that ran (the task_result carries it)',
  );

  const continued = await h.runTask(
    task('c', [
      shell('broken', 'false', 'exit 3', { on_failure: 'continue' }),
      shell('later', `test -f ${dir}/later`, `touch ${dir}/later`),
    ]),
  );
  t.equal(continued.outcome, 'failed', 'the task is still failed');
  t.same(
    continued.steps.map((s) => s.outcome),
    ['failed', 'applied'],
  );
  t.ok(existsSync(join(dir, 'later')));
});

t.test('apply exits 0 but the re-check still fails: unconverged', async (t) => {
  const h = createHarness();
  const result = await h.runTask(task('u', [shell('liar', 'false', 'true'), shell('after', 'true', 'true')]));
  t.equal(result.outcome, 'unconverged');
  t.match(result.steps[0], { outcome: 'unconverged', apply_exit_code: 0, exit_code: 1, error: /re-check/ });
  t.equal(result.steps[1]?.outcome, 'skipped', 'unconverged aborts by default');
  t.match(result.steps[0]?.output_tail, /==> check \(exit 1\)\n==> apply \(exit 0\)\n==> recheck \(exit 1\)/);
});

t.test('command_timeout kills the whole process group and reports timeout', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'grandchild.pid');
  const h = createHarness({ timeoutMs: 500 });
  const result = await h.runTask(
    task('slow', [
      shell('hang', 'false', `sleep 300 & echo $! > ${pidFile}; echo started; wait`),
      shell('next', 'true', 'true'),
    ]),
  );
  t.equal(result.outcome, 'timeout');
  t.match(result.steps[0], { outcome: 'timeout', error: /timed out after 500 ms/ });
  t.equal(result.steps[1]?.outcome, 'skipped');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.ok(pid > 0 && (await diesSoon(pid)), 'the backgrounded grandchild is gone too');
});

t.test('a group ignoring SIGTERM is SIGKILLed after the grace period', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'pid');
  const result = await runCommand(
    '/bin/bash',
    ['-c', `trap '' TERM; sleep 300 & echo $! > ${pidFile}; wait`],
    {
      cwd: dir,
      env: process.env,
      timeoutMs: 300,
      killGraceMs: 200,
      signal: new AbortController().signal,
    },
  );
  t.ok(result.timedOut);
  t.equal(result.exitCode, null);
  t.ok(await diesSoon(Number(readFileSync(pidFile, 'utf8'))), 'the grandchild ignoring SIGTERM is killed');
});

t.test('live output is streamed per phase, capped in lines; the tail is capped in bytes', async (t) => {
  const h = createHarness({ maxOutputLinesPerStep: 50 });
  const run = task(
    'noisy',
    [shell('lots', 'for i in $(seq 1 3000); do echo "line $i"; done; exit 1', 'echo applied >&2')],
    'apply',
  );
  const result = await h.runTask(run);
  const lines = h.outputs.filter((o) => o.execution_id === run.execution_id);
  t.equal(lines.length, 51, '50 lines and one notice');
  t.match(lines[0], { phase: 'check', stream: 'stdout', line: 'line 1', step: 'lots', task: 'noisy' });
  t.match(lines.at(-1), { line: /live output limit/ });
  t.ok(Buffer.byteLength(result.steps[0]?.output_tail ?? '') <= 4096);
  t.match(result.steps[0]?.output_tail, /line 3000\n$/, 'the newest output is kept');
  t.equal(result.steps[0]?.outcome, 'unconverged');
});

t.test('long lines are cut in live output', async (t) => {
  const h = createHarness();
  const run = task('wide', [shell('wide', `head -c 100000 /dev/zero | tr '\\0' x; echo`, 'true')], 'check');
  await h.runTask(run);
  const lines = h.outputs.filter((o) => o.execution_id === run.execution_id);
  t.ok(lines.length > 0);
  for (const l of lines) t.ok(l.line.length <= 4097, 'within the protocol limit');
});

t.test('a missing working_dir fails the step with a clear error, never runs elsewhere', async (t) => {
  const dir = tempDir(t);
  const h = createHarness();
  const result = await h.runTask(task('w', [shell('s', 'true', 'true', { working_dir: join(dir, 'nope') })]));
  t.match(result.steps[0], { outcome: 'failed', error: /working_dir .*nope does not exist/ });
});

t.test('default_shell is used for checks and commands', async (t) => {
  const dir = tempDir(t);
  const fakeShell = join(dir, 'myshell');
  writeFileSync(fakeShell, `#!/bin/sh\necho "via myshell: $2"\nexec /bin/sh "$@"\n`, { mode: 0o755 });
  const h = createHarness({ defaultShell: fakeShell });
  const result = await h.runTask(task('s', [shell('s', 'true', 'true')]));
  t.match(result.steps[0]?.output_tail, /via myshell: true/);
});
