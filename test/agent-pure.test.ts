import pino from 'pino';
import t from 'tap';
import { admit } from '../agent/admission.js';
import { backoffDelay, refusalDelay } from '../agent/backoff.js';
import { parseTaskList } from '../agent/executors/mise.js';
import { shellCommandLine } from '../agent/executors/shell.js';
import { systemdActions } from '../agent/executors/systemd.js';
import {
  validateBranch,
  validateEnvNames,
  validateGitUrl,
  validateMiseTask,
  validateUnitName,
  validateUserName,
} from '../agent/executors/validate.js';
import { Outbox, retryDelayMs } from '../agent/outbox.js';
import {
  afterApply,
  afterCheck,
  afterRecheck,
  judgeCheck,
  stopsTask,
  worstOutcome,
} from '../agent/outcome.js';
import { RecentIds } from '../agent/recent-ids.js';
import { TailBuffer } from '../agent/tail-buffer.js';
import type { AgentResult } from '../shared/protocol.js';

const ok = { exitCode: 0, output: '', timedOut: false, error: null };
const bad = { exitCode: 1, output: '', timedOut: false, error: null };
const timedOut = { exitCode: null, output: '', timedOut: true, error: 'timed out' };
const broken = { exitCode: null, output: '', timedOut: false, error: 'cannot run' };

t.test('backoffDelay: full jitter under an exponential, capped ceiling', async (t) => {
  t.equal(
    backoffDelay(0, 500, 30_000, () => 0),
    0,
    'full jitter can be zero',
  );
  t.equal(
    backoffDelay(0, 500, 30_000, () => 0.999999),
    499,
  );
  t.equal(
    backoffDelay(3, 500, 30_000, () => 0.5),
    2000,
    '500·2³ = 4000, half of it',
  );
  t.equal(
    backoffDelay(10, 500, 30_000, () => 0.5),
    15_000,
    'capped at 30 s',
  );
  t.equal(
    backoffDelay(5000, 500, 30_000, () => 0.999999),
    29_999,
    'huge attempts do not overflow',
  );
  t.equal(
    backoffDelay(-1, 500, 30_000, () => 0.5),
    250,
    'negative attempts count as the first',
  );
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(i % 12, 100, 5000);
    t.ok(d >= 0 && d < Math.min(5000, 100 * 2 ** (i % 12)), 'within [0, ceiling)');
  }
});

t.test('refusalDelay: between half the cap and the cap', async (t) => {
  t.equal(
    refusalDelay(30_000, () => 0),
    15_000,
  );
  t.equal(
    refusalDelay(30_000, () => 0.999999),
    29_999,
  );
});

t.test('RecentIds: bounded, oldest forgotten first', async (t) => {
  const ids = new RecentIds(3);
  t.ok(ids.add('a'));
  t.notOk(ids.add('a'), 'duplicate');
  ids.add('b');
  ids.add('c');
  ids.add('d');
  t.equal(ids.size, 3);
  t.notOk(ids.has('a'), 'oldest evicted');
  t.ok(ids.has('b') && ids.has('c') && ids.has('d'));
  t.throws(() => new RecentIds(0));
});

const result = (id: string): AgentResult => ({
  type: 'check_result',
  result_id: id,
  instruction_id: 'i',
  execution_id: 'e',
  task: 't',
  step: 's',
  satisfied: true,
  exit_code: 0,
  duration_ms: 1,
  output_tail: '',
});

t.test('Outbox: keeps results until acked, in order, bounded', async (t) => {
  const warnings: unknown[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
  const box = new Outbox(logger, 3);
  for (const id of ['r1', 'r2', 'r3']) box.add(result(id));
  t.same(
    box.pending().map((r) => r.result_id),
    ['r1', 'r2', 'r3'],
  );
  t.equal(box.ack(['r2', 'unknown']), 1);
  t.same(
    box.pending().map((r) => r.result_id),
    ['r1', 'r3'],
  );
  box.add(result('r4'));
  box.add(result('r5'));
  t.same(
    box.pending().map((r) => r.result_id),
    ['r3', 'r4', 'r5'],
    'oldest dropped',
  );
  t.equal(box.droppedTotal, 1);
  t.equal(warnings.length, 1, 'the drop is logged');
  t.match(warnings[0], { result_id: 'r1', msg: /outbox full/ });
  box.ack(['r3', 'r4', 'r5', 'r5']);
  t.equal(box.size, 0);
});

t.test('Outbox: overdue results are handed out again, each at most once per interval', async (t) => {
  const box = new Outbox(pino({ level: 'silent' }));
  box.add(result('r1'), 1000);
  box.add(result('r2'), 2000);
  t.same(box.takeOverdue(1500, 1000), [], 'nothing is overdue yet');
  t.same(
    box.takeOverdue(3000, 1000).map((r) => r.result_id),
    ['r1', 'r2'],
    'oldest first',
  );
  t.same(box.takeOverdue(3500, 1000), [], 'just re-sent');
  box.ack(['r1']);
  t.same(
    box.takeOverdue(4000, 1000).map((r) => r.result_id),
    ['r2'],
    'acked results are never re-sent',
  );
  box.markAllSent(10_000);
  t.same(box.takeOverdue(10_500, 1000), [], 'a reconnect re-sent everything');
});

t.test('retryDelayMs: the gateway’s delay plus 0–50 % jitter, capped at resendAfterMs', async (t) => {
  t.equal(
    retryDelayMs(1000, 30_000, () => 0),
    1000,
    'no jitter drawn',
  );
  t.equal(
    retryDelayMs(1000, 30_000, () => 0.5),
    1250,
  );
  t.equal(
    retryDelayMs(1000, 30_000, () => 0.999_999),
    1500,
    'at most half again',
  );
  for (let i = 0; i < 1000; i++) {
    const d = retryDelayMs(1000, 30_000);
    if (d < 1000 || d > 1500) t.fail(`delay ${d} out of [1000, 1500]`);
  }
  t.equal(
    retryDelayMs(10_000, 3000, () => 0),
    3000,
    'never later than resendAfterMs',
  );
  t.equal(
    retryDelayMs(25_000, 30_000, () => 0.9),
    30_000,
    'jitter capped too',
  );
  t.equal(
    retryDelayMs(0, 30_000, () => 0.7),
    0,
    'retry_after_ms 0: at once',
  );
});

t.test('Outbox: results a gateway refused become due at their retry time', async (t) => {
  const box = new Outbox(pino({ level: 'silent' }));
  for (const id of ['r1', 'r2', 'r3']) box.add(result(id), 1000);
  t.equal(box.nextDueAt(), null, 'nothing asked for yet');
  t.equal(box.retryAt(['r3', 'r1', 'acked-long-ago'], 1500), 2, 'unknown ids are ignored');
  t.equal(box.nextDueAt(), 1500);
  t.same(box.takeOverdue(1499, 30_000), [], 'not before its due time');
  t.same(
    box.takeOverdue(1500, 30_000).map((r) => r.result_id),
    ['r1', 'r3'],
    'due: handed out long before resendAfterMs, oldest first, r2 left alone',
  );
  t.equal(box.nextDueAt(), null, 'a re-send clears the due time');
  t.same(box.takeOverdue(2000, 30_000), [], 'handed out once');
  t.same(
    box.takeOverdue(31_000, 30_000).map((r) => r.result_id),
    ['r2'],
    'the 30 s path still counts from the last send (r1 and r3 went at 1500)',
  );

  // A later result_retry sets a new due time; acknowledged results drop out.
  box.retryAt(['r1', 'r2'], 40_000);
  box.retryAt(['r2'], 35_000);
  t.equal(box.nextDueAt(), 35_000);
  box.ack(['r2']);
  t.equal(box.nextDueAt(), 40_000, 'acked: no longer due');
  t.equal(box.retryAt(['r2'], 36_000), 0, 'a retry for an acked result is ignored');
  box.markAllSent(38_000);
  t.equal(box.nextDueAt(), null, 'a reconnect re-sent everything: no retry pending');
  t.same(box.takeOverdue(40_000, 30_000), []);
});

t.test('outcome decisions', async (t) => {
  t.equal(judgeCheck(ok), 'satisfied');
  t.equal(judgeCheck(bad), 'unsatisfied');
  t.equal(judgeCheck(timedOut), 'timeout');
  t.equal(judgeCheck(broken), 'failed', 'an executor error is not drift');
  t.same(afterCheck('satisfied', 'apply'), { outcome: 'satisfied' });
  t.same(afterCheck('unsatisfied', 'check'), { outcome: 'drifted' });
  t.same(afterCheck('unsatisfied', 'apply'), { apply: true });
  t.same(afterCheck('failed', 'apply'), { outcome: 'failed' }, 'no apply after a broken check');
  t.same(afterCheck('timeout', 'apply'), { outcome: 'timeout' });
  t.same(afterApply(ok), { recheck: true });
  t.same(afterApply(bad), { outcome: 'failed' });
  t.same(afterApply(timedOut), { outcome: 'timeout' });
  t.same(afterApply({ ...ok, error: 'cancelled' }), { outcome: 'failed' });
  t.equal(afterRecheck(ok), 'applied');
  t.equal(afterRecheck(bad), 'unconverged');
  t.equal(afterRecheck(timedOut), 'timeout');
  t.ok(stopsTask('failed') && stopsTask('timeout') && stopsTask('unconverged'));
  t.notOk(stopsTask('drifted') || stopsTask('applied') || stopsTask('satisfied') || stopsTask('skipped'));
});

t.test('worstOutcome: documented order', async (t) => {
  t.equal(worstOutcome([]), 'satisfied');
  t.equal(worstOutcome(['satisfied', 'applied']), 'applied');
  t.equal(worstOutcome(['applied', 'drifted']), 'drifted');
  t.equal(worstOutcome(['drifted', 'unconverged']), 'unconverged');
  t.equal(worstOutcome(['unconverged', 'timeout']), 'timeout');
  t.equal(worstOutcome(['timeout', 'failed', 'skipped']), 'failed');
  t.equal(worstOutcome(['skipped', 'skipped']), 'skipped');
  t.equal(worstOutcome(['applied', 'skipped']), 'skipped', 'a partial run is not reported converged');
});

t.test('admit: duplicate ids, busy tasks, shutdown', async (t) => {
  const task = (name: string, id = `x-${name}`) => ({
    task: name,
    execution_id: id,
    mode: 'apply' as const,
    steps: [],
  });
  const state = {
    accepting: true,
    seen: (id: string) => id === 'old',
    busyWith: (n: string) => (n === 'web' ? 'i-1' : undefined),
  };
  t.same(admit({ instruction_id: 'new', tasks: [task('db')] }, state), { accepted: true });
  t.match(admit({ instruction_id: 'old', tasks: [task('db')] }, state), {
    accepted: false,
    code: 'duplicate',
    reason: /duplicate/,
  });
  t.match(admit({ instruction_id: 'new', tasks: [task('db'), task('web')] }, state), {
    accepted: false,
    code: 'busy',
    reason: /web is already executing \(instruction i-1\)/,
  });
  t.match(admit({ instruction_id: 'new', tasks: [task('db'), task('db', 'other')] }, state), {
    accepted: false,
    code: 'invalid',
    reason: /twice/,
  });
  t.match(admit({ instruction_id: 'new', tasks: [task('a', 'e'), task('b', 'e')] }, state), {
    accepted: false,
    code: 'invalid',
    reason: /twice/,
  });
  t.match(admit({ instruction_id: 'new', tasks: [] }, { ...state, accepting: false }), {
    accepted: false,
    code: 'shutting_down',
    reason: /shutting down/,
  });
});

t.test('TailBuffer keeps the last bytes', async (t) => {
  const tail = new TailBuffer(10);
  tail.push('hello ');
  t.equal(tail.toString(), 'hello ');
  t.notOk(tail.wasTruncated);
  tail.push('world, again');
  t.equal(tail.toString(), 'rld, again');
  t.ok(tail.wasTruncated);
  const big = new TailBuffer(4096);
  for (let i = 0; i < 10_000; i++) big.push(`line ${i}\n`);
  t.ok(Buffer.byteLength(big.toString()) <= 4096);
  t.match(big.toString(), /line 9999\n$/);
  const utf = new TailBuffer(4);
  utf.push('€€');
  t.equal(utf.toString(), '€', 'a cut multi-byte character is dropped, not garbled');
});

t.test('validation of strings that reach argv', async (t) => {
  t.equal(validateUserName('deploy'), null);
  t.equal(validateUserName('_svc-1$'), null);
  for (const u of ['', 'Root', '-u', 'a b', 'x;rm', 'a'.repeat(33), '1abc'])
    t.not(validateUserName(u), null, u);
  t.equal(validateUnitName('app.service'), null);
  t.equal(validateUnitName('getty@tty1.service'), null);
  for (const u of ['app', '-x.service', 'a b.service', '--now.service', 'x.service;id'])
    t.not(validateUnitName(u), null, u);
  t.equal(validateBranch('main'), null);
  t.equal(validateBranch('release/1.2'), null);
  for (const b of ['-b', '--upload-pack=x', 'a..b', 'x.lock', 'a b', '', '/x', 'x/', 'a@{1}'])
    t.not(validateBranch(b), null, b);
  t.equal(validateGitUrl('https://example.com/r.git'), null);
  t.not(validateGitUrl('--upload-pack=touch /tmp/x'), null);
  t.not(validateGitUrl('ext::sh -c id'), null);
  t.equal(validateMiseTask('check'), null);
  t.equal(validateMiseTask('build:web'), null);
  t.not(validateMiseTask('--help'), null);
  t.equal(validateEnvNames({ A_B: '1' }), null);
  t.not(validateEnvNames({ 'A=B': '1' }), null);
  t.not(validateEnvNames({ '-i': '1' }), null);
});

t.test('shellCommandLine: argv, never a shell string around user input', async (t) => {
  const opts = { defaultShell: '/bin/bash', baseEnv: { PATH: '/usr/bin' } };
  t.same(shellCommandLine({ run_as: null, env: { A: '1' } }, 'echo $A', opts), {
    file: '/bin/bash',
    args: ['-c', 'echo $A'],
    env: { PATH: '/usr/bin', A: '1' },
  });
  t.same(shellCommandLine({ run_as: 'deploy', env: {} }, 'id', opts), {
    file: 'sudo',
    args: ['-n', '-u', 'deploy', '--', '/bin/bash', '-c', 'id'],
    env: { PATH: '/usr/bin' },
  });
  t.same(shellCommandLine({ run_as: 'deploy', env: { A: 'x y' } }, 'id', opts), {
    file: 'sudo',
    args: ['-n', '-u', 'deploy', '--', 'env', '--', 'A=x y', '/bin/bash', '-c', 'id'],
    env: { PATH: '/usr/bin' },
  });
  t.match(shellCommandLine({ run_as: 'root; id', env: {} }, 'id', opts), { error: /invalid run_as/ });
  t.match(shellCommandLine({ run_as: '-u', env: {} }, 'id', opts), { error: /invalid run_as/ });
});

t.test('systemdActions: only what differs, enable before start', async (t) => {
  t.same(systemdActions({ state: 'running', enabled: true }, { active: true, enabled: true }), []);
  t.same(systemdActions({ state: 'running', enabled: true }, { active: false, enabled: false }), [
    'enable',
    'start',
  ]);
  t.same(systemdActions({ state: 'stopped', enabled: false }, { active: true, enabled: true }), [
    'disable',
    'stop',
  ]);
  t.same(systemdActions({ state: 'stopped', enabled: true }, { active: true, enabled: true }), ['stop']);
});

t.test('parseTaskList reads names and aliases', async (t) => {
  t.same(parseTaskList('[{"name":"check","aliases":["c"]},{"name":"apply","aliases":[]}]'), [
    'check',
    'c',
    'apply',
  ]);
  t.throws(() => parseTaskList('{}'));
});
