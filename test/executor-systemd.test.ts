import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createMiseExecutor } from '../agent/executors/mise.js';
import { createShellExecutor } from '../agent/executors/shell.js';
import { createSystemdExecutor } from '../agent/executors/systemd.js';
import { createHarness, shell, systemd, task, tempDir } from './helpers/agent-harness.js';

const fakeBin = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'bin');

function setup(t: Parameters<typeof tempDir>[0], units: string) {
  const dir = tempDir(t);
  const state = join(dir, 'units');
  writeFileSync(state, units);
  // The stand-in is found through PATH, exactly as the real systemctl would be.
  const env = { ...process.env, PATH: `${fakeBin}:${process.env['PATH']}`, FLUKE_FAKE_SYSTEMD_STATE: state };
  const h = createHarness({
    executors: {
      shell: createShellExecutor({ defaultShell: '/bin/bash' }),
      systemd: createSystemdExecutor({ baseEnv: env }),
      mise: createMiseExecutor(),
    },
  });
  return {
    h,
    units: () => readFileSync(state, 'utf8').trim().split('\n').sort(),
    calls: () => readFileSync(`${state}.log`, 'utf8').trim().split('\n'),
  };
}

t.test('satisfied unit: only is-active and is-enabled run', async (t) => {
  const { h, calls } = setup(t, 'app.service active enabled\n');
  const result = await h.runTask(task('svc', [systemd('app', 'app.service')]));
  t.equal(result.outcome, 'satisfied');
  t.same(calls(), ['is-active -- app.service', 'is-enabled -- app.service'], 'unit passed after --');
});

t.test('stopped and disabled unit is enabled, started and re-checked', async (t) => {
  const { h, units, calls } = setup(t, 'app.service inactive disabled\nother.service active enabled\n');
  const run = task('svc', [systemd('app', 'app.service')]);
  const result = await h.runTask(run);
  t.equal(result.outcome, 'applied');
  t.same(units(), ['app.service active enabled', 'other.service active enabled']);
  t.same(calls(), [
    'is-active -- app.service',
    'is-enabled -- app.service',
    'is-active -- app.service',
    'is-enabled -- app.service',
    'enable -- app.service',
    'start -- app.service',
    'is-active -- app.service',
    'is-enabled -- app.service',
  ]);
  t.match(h.checkResults(run.execution_id)[0], {
    satisfied: false,
    output_tail: /inactive and not enabled; wanted running and enabled/,
  });
});

t.test('state = stopped, enabled = false: stop and disable', async (t) => {
  const { h, units } = setup(t, 'app.service active enabled\n');
  const result = await h.runTask(
    task('svc', [systemd('app', 'app.service', { state: 'stopped', enabled: false })]),
  );
  t.equal(result.outcome, 'applied');
  t.same(units(), ['app.service inactive disabled']);
});

t.test('check mode reports drift without touching the unit', async (t) => {
  const { h, units } = setup(t, 'app.service inactive enabled\n');
  const result = await h.runTask(task('svc', [systemd('app', 'app.service')], 'check'));
  t.equal(result.outcome, 'drifted');
  t.same(units(), ['app.service inactive enabled']);
});

t.test('a unit that fails to start fails the step and aborts the task', async (t) => {
  const { h } = setup(t, 'fail-app.service inactive enabled\n');
  const result = await h.runTask(
    task('svc', [systemd('app', 'fail-app.service'), shell('after', 'true', 'true')]),
  );
  t.equal(result.outcome, 'failed');
  t.match(result.steps[0], { outcome: 'failed', apply_exit_code: 1, output_tail: /control process exited/ });
  t.equal(result.steps[1]?.outcome, 'skipped');
});

t.test('an unknown unit fails at apply; an invalid name never reaches systemctl', async (t) => {
  const { h, calls } = setup(t, '');
  const missing = await h.runTask(task('svc', [systemd('ghost', 'ghost.service')]));
  t.match(missing.steps[0], { outcome: 'failed', output_tail: /not found/ });
  const before = calls().length;
  const invalid = await h.runTask(task('svc2', [systemd('bad', '--now.service')]));
  t.match(invalid.steps[0], { outcome: 'failed', error: /invalid systemd unit name/ });
  t.equal(calls().length, before, 'systemctl not run for an invalid unit');
});
