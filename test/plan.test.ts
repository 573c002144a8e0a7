import t from 'tap';
import {
  buildInstruction,
  driftCheckDelay,
  driftCheckOffset,
  effectivePolicy,
  modeFor,
  stableHash,
  tasksForAgent,
} from '../shared/plan.js';
import type { CompiledTask, DriftPolicy } from '../shared/types.js';

const task = (
  name: string,
  match_labels: Record<string, string>,
  policy: DriftPolicy | null = null,
): CompiledTask => ({
  name,
  description: null,
  selector: { match_labels, match_expressions: [] },
  drift: policy ? { policy } : null,
  steps: [{ type: 'systemd', name: 'app', unit: 'app.service', state: 'running', enabled: true }],
});

const state = {
  tasks: [
    task('base', {}),
    task('web', { role: 'web' }, 'alert_only'),
    task('db', { role: 'db' }, 'remediate_and_alert'),
  ],
};

t.test('tasksForAgent keeps the tasks whose selector holds, in order', async (t) => {
  t.same(
    tasksForAgent({ role: 'web' }, state).map((x) => x.name),
    ['base', 'web'],
  );
  t.same(
    tasksForAgent({}, state).map((x) => x.name),
    ['base'],
  );
  t.same(tasksForAgent({ role: 'web' }, { tasks: [] }), []);
});

t.test('effectivePolicy: the task’s own, else the server default', async (t) => {
  t.equal(effectivePolicy(task('a', {}), 'remediate'), 'remediate');
  t.equal(effectivePolicy(task('a', {}), 'alert_only'), 'alert_only');
  t.equal(effectivePolicy(task('a', {}, 'remediate_and_alert'), 'alert_only'), 'remediate_and_alert');
});

t.test('modeFor: alert_only only checks, unless reconciled by hand', async (t) => {
  const table: [DriftPolicy, 'commit' | 'connect' | 'drift_check' | 'manual', 'check' | 'apply'][] = [
    ['remediate', 'commit', 'apply'],
    ['remediate', 'connect', 'apply'],
    ['remediate', 'drift_check', 'apply'],
    ['remediate', 'manual', 'apply'],
    ['remediate_and_alert', 'commit', 'apply'],
    ['remediate_and_alert', 'connect', 'apply'],
    ['remediate_and_alert', 'drift_check', 'apply'],
    ['remediate_and_alert', 'manual', 'apply'],
    ['alert_only', 'commit', 'check'],
    ['alert_only', 'connect', 'check'],
    ['alert_only', 'drift_check', 'check'],
    ['alert_only', 'manual', 'apply'],
  ];
  for (const [policy, trigger, mode] of table)
    t.equal(modeFor(policy, trigger), mode, `${policy} on ${trigger}`);
});

t.test('buildInstruction: one run message, an execution id and mode per task', async (t) => {
  const planned = buildInstruction({
    agent: 'web-01',
    tasks: tasksForAgent({ role: 'web' }, state),
    revision: 'c0ffee',
    trigger: 'drift_check',
    serverDefault: 'remediate',
    ids: { instruction: 'job-42' },
  });
  t.same(planned, {
    agent: 'web-01',
    message: {
      type: 'run',
      instruction_id: 'job-42',
      revision: 'c0ffee',
      trigger: 'drift_check',
      tasks: [
        { execution_id: 'job-42.0', task: 'base', mode: 'apply', steps: state.tasks[0]?.steps },
        { execution_id: 'job-42.1', task: 'web', mode: 'check', steps: state.tasks[1]?.steps },
      ],
    },
    tasks: [
      { task: 'base', execution_id: 'job-42.0', mode: 'apply', policy: 'remediate' },
      { task: 'web', execution_id: 'job-42.1', mode: 'check', policy: 'alert_only' },
    ],
  });
  const manual = buildInstruction({
    agent: 'web-01',
    tasks: [state.tasks[1] as CompiledTask],
    revision: 'c0ffee',
    trigger: 'manual',
    serverDefault: 'remediate',
    ids: { instruction: 'run-7', execution: (x) => `run-7/${x.name}` },
  });
  t.same(manual.tasks, [{ task: 'web', execution_id: 'run-7/web', mode: 'apply', policy: 'alert_only' }]);
  t.same(
    buildInstruction({
      agent: 'a',
      tasks: [],
      revision: 'r',
      trigger: 'commit',
      serverDefault: 'remediate',
      ids: { instruction: 'x' },
    }).message.tasks,
    [],
  );
});

t.test('drift checks: a stable slot per agent, spread over the interval', async (t) => {
  t.equal(stableHash('web-01'), stableHash('web-01'));
  t.not(stableHash('web-01'), stableHash('web-02'));

  const interval = 60_000;
  const offset = driftCheckOffset('web-01', interval);
  t.ok(offset >= 0 && offset < interval);
  const start = 1_741_875_721_000;
  const delay = driftCheckDelay('web-01', interval, start);
  t.ok(delay >= 0 && delay < interval);
  t.equal((start + delay) % interval, offset, 'lands on the slot');
  t.equal(driftCheckDelay('web-01', interval, start + delay), 0, 'at the slot: now');
  t.equal(driftCheckDelay('web-01', interval, start + delay + 1), interval - 1, 'just after: next interval');
  t.equal(driftCheckDelay('web-01', interval, start + interval), delay, 'the same phase every interval');

  const buckets = new Array<number>(10).fill(0);
  const names = 10_000;
  for (let i = 0; i < names; i++) {
    const slot = driftCheckOffset(`host-${i}.example.com`, interval);
    buckets[Math.floor((slot / interval) * 10)]! += 1;
  }
  for (const [i, n] of buckets.entries()) {
    t.ok(n > 900 && n < 1100, `tenth ${i} of the interval holds ${n} of ${names} agents`);
  }
  const pow2 = new Array<number>(8).fill(0);
  for (let i = 0; i < names; i++) pow2[driftCheckOffset(`web-${i}`, 64) >> 3]! += 1;
  for (const n of pow2) t.ok(n > 1100 && n < 1400, `a power-of-two interval spreads too (${n})`);
  const sequential = new Set<number>();
  for (let i = 0; i < 1000; i++) sequential.add(Math.floor(driftCheckOffset(`web-${i}`, interval) / 1000));
  t.ok(sequential.size > 50, `sequential names use ${sequential.size} of 60 seconds`);
});
