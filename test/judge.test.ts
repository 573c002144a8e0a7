import t from 'tap';
import { AlertPayloadSchema, alertId } from '../shared/alerts.js';
import { type JudgeInput, judge, type Observation, type ResultObservation } from '../shared/judge.js';
import type { DriftEpisode, TaskStatus } from '../shared/status.js';
import type { DriftPolicy, RunMode } from '../shared/types.js';

const NOW = '2025-03-13T14:22:01.734Z';
const agent = { name: 'web-01', labels: { role: 'web', env: 'production' } };

const result = (outcome: ResultObservation['outcome'], steps: ResultObservation['steps']): Observation => ({
  type: 'task_result',
  execution_id: 'i2.0',
  outcome,
  steps,
});

/** Each observation, as the agent reports it for one step named `renew`. */
const OBSERVATIONS = {
  satisfied: result('satisfied', [{ step: 'renew', outcome: 'satisfied', apply_exit_code: null }]),
  applied: result('applied', [{ step: 'renew', outcome: 'applied', apply_exit_code: 0 }]),
  drifted: result('drifted', [{ step: 'renew', outcome: 'drifted', apply_exit_code: null }]),
  unconverged: result('unconverged', [{ step: 'renew', outcome: 'unconverged', apply_exit_code: 0 }]),
  apply_failed: result('failed', [{ step: 'renew', outcome: 'failed', apply_exit_code: 1 }]),
  check_error: result('failed', [{ step: 'renew', outcome: 'failed', apply_exit_code: null }]),
  step_timeout: result('timeout', [{ step: 'renew', outcome: 'timeout', apply_exit_code: null }]),
  no_answer: { type: 'timeout', execution_id: 'i2.0' },
} satisfies Record<string, Observation>;
type ObservationName = keyof typeof OBSERVATIONS;

const episodeBase = {
  id: 'i1.0',
  task: 'certs',
  opened_at: '2025-03-13T14:21:00.000Z',
  revision: 'c0ffee',
  policy: 'remediate_and_alert',
} as const;
/** none; open without alerts (opened by a check error); drift alerted; drift and failure alerted. */
const EPISODES: Record<string, DriftEpisode | null> = {
  none: null,
  quiet: { ...episodeBase, drifted_steps: [], alerts: [] },
  detected: { ...episodeBase, drifted_steps: ['renew'], alerts: ['drift_detected'] },
  failed: { ...episodeBase, drifted_steps: ['renew'], alerts: ['drift_detected', 'remediation_failed'] },
};
const EPISODE_ORDER = ['none', 'quiet', 'detected', 'failed'] as const;

function input(
  policy: DriftPolicy,
  mode: RunMode,
  observation: Observation,
  episode: DriftEpisode | null,
): JudgeInput {
  return {
    agent,
    task: 'certs',
    policy,
    mode,
    revision: 'c0ffee',
    now: NOW,
    previous: null,
    episode,
    observation,
  };
}

const D = 'drift_detected';
const R = 'drift_remediated';
const F = 'remediation_failed';
// Alerts per [episode none, quiet, detected, failed], as `event:remediation_status`.
const applying: Record<ObservationName, string[]> = {
  satisfied: ['', '', `${R}:resolved`, `${R}:resolved`],
  applied: [
    `${D}:in_progress ${R}:remediated`,
    `${D}:in_progress ${R}:remediated`,
    `${R}:remediated`,
    `${R}:remediated`,
  ],
  drifted: [`${D}:in_progress`, `${D}:in_progress`, '', ''],
  unconverged: [`${D}:in_progress ${F}:failed`, `${D}:in_progress ${F}:failed`, `${F}:failed`, ''],
  apply_failed: [`${D}:in_progress ${F}:failed`, `${D}:in_progress ${F}:failed`, `${F}:failed`, ''],
  check_error: ['', '', `${F}:failed`, ''],
  step_timeout: ['', '', `${F}:failed`, ''],
  no_answer: ['', '', `${F}:failed`, ''],
};
const silent: Record<ObservationName, string[]> = {
  satisfied: ['', '', '', ''],
  applied: ['', '', '', ''],
  drifted: ['', '', '', ''],
  unconverged: ['', '', '', ''],
  apply_failed: ['', '', '', ''],
  check_error: ['', '', '', ''],
  step_timeout: ['', '', '', ''],
  no_answer: ['', '', '', ''],
};
const EXPECTED: { policy: DriftPolicy; mode: RunMode; alerts: Record<ObservationName, string[]> }[] = [
  { policy: 'remediate', mode: 'apply', alerts: silent },
  { policy: 'remediate_and_alert', mode: 'apply', alerts: applying },
  // A manual reconcile of an alert_only task applies, and alerts as remediate_and_alert does.
  { policy: 'alert_only', mode: 'apply', alerts: applying },
  {
    policy: 'alert_only',
    mode: 'check',
    alerts: {
      satisfied: ['', '', `${R}:resolved`, `${R}:resolved`],
      applied: [
        `${D}:pending_manual ${R}:remediated`,
        `${D}:pending_manual ${R}:remediated`,
        `${R}:remediated`,
        `${R}:remediated`,
      ],
      drifted: [`${D}:pending_manual`, `${D}:pending_manual`, '', ''],
      unconverged: [`${D}:pending_manual`, `${D}:pending_manual`, '', ''],
      apply_failed: [`${D}:pending_manual`, `${D}:pending_manual`, '', ''],
      check_error: ['', '', '', ''],
      step_timeout: ['', '', '', ''],
      no_answer: ['', '', '', ''],
    },
  },
];

t.test('every policy × outcome × episode state', async (t) => {
  for (const { policy, mode, alerts } of EXPECTED) {
    for (const [name, row] of Object.entries(alerts) as [ObservationName, string[]][]) {
      EPISODE_ORDER.forEach((state, i) => {
        const observation = OBSERVATIONS[name];
        const verdict = judge(input(policy, mode, observation, EPISODES[state] ?? null));
        const what = `${policy}/${mode}/${name}/${state}`;
        const got = verdict.alerts.map((a) => `${a.payload.event}:${a.payload.remediation_status}`).join(' ');
        t.equal(got, row[i], `${what}: alerts`);
        const clean = name === 'satisfied' || name === 'applied';
        t.equal(
          verdict.openEpisode?.id ?? null,
          state === 'none' && name !== 'satisfied' ? 'i2.0' : null,
          `${what}: opens`,
        );
        const expectClose = clean ? (state === 'none' ? (name === 'applied' ? 'i2.0' : null) : 'i1.0') : null;
        t.equal(verdict.closeEpisode, expectClose, `${what}: closes`);
        t.equal(verdict.ignored, null);
        const outcome = observation.type === 'task_result' ? observation.outcome : 'timeout';
        t.equal(verdict.status?.outcome, outcome, `${what}: status`);
        for (const alert of verdict.alerts) t.equal(alert.episode_id, state === 'none' ? 'i2.0' : 'i1.0');
      });
    }
  }
});

t.test('the status records what the run found', async (t) => {
  const verdict = judge(
    input(
      'remediate',
      'apply',
      result('failed', [
        { step: 'a', outcome: 'applied', apply_exit_code: 0 },
        { step: 'b', outcome: 'failed', apply_exit_code: 2 },
        { step: 'c', outcome: 'skipped', apply_exit_code: null },
      ]),
      null,
    ),
  );
  t.same(verdict.status, {
    task: 'certs',
    outcome: 'failed',
    mode: 'apply',
    revision: 'c0ffee',
    execution_id: 'i2.0',
    at: NOW,
    drifted_steps: ['a', 'b'],
    failed_steps: ['b'],
    policy: 'remediate',
  });
  t.same(verdict.openEpisode, {
    id: 'i2.0',
    task: 'certs',
    opened_at: NOW,
    revision: 'c0ffee',
    policy: 'remediate',
    drifted_steps: ['a', 'b'],
  });
});

t.test('an early failing check alerts before the apply ends, once', async (t) => {
  const check: Observation = { type: 'check_result', execution_id: 'i2.0', step: 'renew', satisfied: false };
  const first = judge(input('remediate_and_alert', 'apply', check, null));
  t.equal(first.status, null, 'the run is still going');
  t.equal(first.openEpisode?.id, 'i2.0');
  t.same(
    first.alerts.map((a) => [a.payload.event, a.payload.remediation_status, a.payload.drifted_steps]),
    [['drift_detected', 'in_progress', ['renew']]],
  );
  const episode: DriftEpisode = {
    ...(first.openEpisode as NonNullable<typeof first.openEpisode>),
    alerts: ['drift_detected'],
  };
  const again = judge(input('remediate_and_alert', 'apply', { ...check, step: 'other' }, episode));
  t.same(
    [again.alerts, again.openEpisode, again.closeEpisode, again.ignored],
    [[], null, null, null],
    'a second drifted step',
  );
  const done = judge(input('remediate_and_alert', 'apply', OBSERVATIONS.applied, episode));
  t.same(
    done.alerts.map((a) => a.payload.event),
    ['drift_remediated'],
  );
  t.equal(done.closeEpisode, 'i2.0');

  t.equal(
    judge(input('remediate_and_alert', 'apply', { ...check, satisfied: true }, null)).ignored,
    'not_decisive',
  );
  t.equal(
    judge(input('alert_only', 'check', check, null)).ignored,
    'not_decisive',
    'check mode waits for the task result',
  );
  t.equal(judge(input('remediate', 'apply', check, null)).ignored, 'not_decisive');
});

const prior = (execution_id: string, outcome: TaskStatus['outcome']): TaskStatus => ({
  task: 'certs',
  outcome,
  mode: 'apply',
  revision: 'c0ffee',
  execution_id,
  at: NOW,
  drifted_steps: [],
  failed_steps: [],
  policy: 'remediate_and_alert',
});

t.test('redelivered and late observations change nothing', async (t) => {
  const withPrevious = (obs: Observation, previous: TaskStatus) => ({
    ...input('remediate_and_alert', 'apply', obs, null),
    previous,
  });
  const none = { status: null, openEpisode: null, alerts: [], closeEpisode: null };
  t.same(judge(withPrevious(OBSERVATIONS.applied, prior('i2.0', 'applied'))), {
    ignored: 'duplicate',
    ...none,
  });
  t.same(judge(withPrevious(OBSERVATIONS.no_answer, prior('i2.0', 'applied'))), {
    ignored: 'superseded',
    ...none,
  });
  const lateCheck: Observation = {
    type: 'check_result',
    execution_id: 'i2.0',
    step: 'renew',
    satisfied: false,
  };
  t.same(
    judge(withPrevious(lateCheck, prior('i2.0', 'applied'))),
    { ignored: 'superseded', ...none },
    'no new episode after close',
  );
  t.same(judge(input('remediate_and_alert', 'apply', result('skipped', []), null)), {
    ignored: 'skipped',
    ...none,
  });

  const late = judge(withPrevious(OBSERVATIONS.applied, prior('i2.0', 'timeout')));
  t.equal(late.ignored, null, 'a real result after the deadline still counts');
  t.equal(late.status?.outcome, 'applied');
  t.equal(
    judge(withPrevious(OBSERVATIONS.applied, prior('i1.0', 'drifted'))).ignored,
    null,
    'an earlier execution',
  );
});

t.test('a timeout against a status from another instruction', async (t) => {
  const ISSUED = '2025-03-13T14:20:00.000Z';
  const timeout = (previous: TaskStatus | null, issued: string | null = ISSUED) => ({
    ...input('remediate_and_alert', 'apply', OBSERVATIONS.no_answer, EPISODES.detected ?? null),
    ...(issued === null ? {} : { issued }),
    previous,
  });
  const from = (execution_id: string, issued_at?: string): TaskStatus => ({
    ...prior(execution_id, 'satisfied'),
    ...(issued_at === undefined ? {} : { issued_at }),
  });
  const none = { status: null, openEpisode: null, alerts: [], closeEpisode: null };

  t.same(
    judge(timeout(from('i3.0', '2025-03-13T14:20:00.001Z'))),
    { ignored: 'superseded', ...none },
    'a later instruction was heard from (the connect check on another gateway): no status, no alert',
  );
  const hung = judge(timeout(from('i1.0', '2025-03-13T14:19:59.999Z')));
  t.equal(
    hung.ignored,
    null,
    'an earlier instruction, even judged after this one was created: still a timeout',
  );
  t.match(hung.status, { outcome: 'timeout', execution_id: 'i2.0', issued_at: ISSUED });
  t.same(
    hung.alerts.map((a) => a.payload.event),
    ['remediation_failed'],
    'a hung apply of known drift still alerts',
  );
  t.equal(judge(timeout(from('i3.0', ISSUED))).ignored, null, 'created in the same millisecond: not later');
  t.equal(
    judge(timeout(from('i3.0'))).ignored,
    null,
    'a status without issued_at (written before it existed)',
  );
  t.equal(judge(timeout(from('i3.0', 'garbage'))).ignored, null, 'an unreadable issued_at');
  const unknown = judge(timeout(from('i3.0', '2025-03-13T14:21:00.000Z'), null));
  t.equal(unknown.ignored, null, "the instruction's creation unknown");
  t.equal(unknown.status?.issued_at, undefined, 'and none recorded');
  t.equal(judge(timeout(null)).status?.issued_at, ISSUED, 'nothing before: recorded, with issued_at');
  t.same(
    judge(timeout(from('i2.0', '2025-03-13T14:10:00.000Z'))),
    { ignored: 'superseded', ...none },
    'its own result is in: superseded whatever the times',
  );

  const since = (at: string) => ({
    ...timeout(from('i3.0', '2025-03-13T14:19:30.000Z')),
    observation: { type: 'timeout' as const, execution_id: 'i2.0', since: at },
  });
  t.same(
    judge(since('2025-03-13T14:19:00.000Z')),
    { ignored: 'superseded', ...none },
    "since the session that replaced the instruction's began: an instruction issued after it supersedes",
  );
  t.match(
    judge(since('2025-03-13T14:19:45.000Z')),
    { ignored: null, status: { outcome: 'timeout', issued_at: ISSUED } },
    "issued before `since`: still a timeout, recorded with the instruction's own creation",
  );

  const late = judge({
    ...input('remediate_and_alert', 'apply', OBSERVATIONS.satisfied, null),
    issued: ISSUED,
    previous: from('i3.0', '2025-03-13T14:21:00.000Z'),
  });
  t.equal(late.ignored, null, 'only timeouts are ordered this way: a late real result still counts');
  t.equal(late.status?.issued_at, ISSUED);
});

t.test('a result of an execution the agent finished before the one the status holds', async (t) => {
  const at = (ms: number) => new Date(Date.parse('2025-03-13T14:20:00.000Z') + ms).toISOString();
  const finished = (execution_id: string, finished_at?: string): TaskStatus => ({
    ...prior(execution_id, 'satisfied'),
    ...(finished_at === undefined ? {} : { finished_at }),
  });
  const late = (previous: TaskStatus | null, finishedAt?: string) => ({
    ...input('remediate_and_alert', 'apply', OBSERVATIONS.applied, EPISODES.detected ?? null),
    observation: {
      ...(OBSERVATIONS.applied as ResultObservation),
      ...(finishedAt ? { finished_at: finishedAt } : {}),
    },
    previous,
  });
  const none = { status: null, openEpisode: null, alerts: [], closeEpisode: null };
  t.same(
    judge(late(finished('i3.0', at(1)), at(0))),
    { ignored: 'superseded', ...none },
    'finished earlier on the same agent, judged later (overlapping checks): the newer status stands, no alert',
  );
  const newer = judge(late(finished('i1.0', at(0)), at(1)));
  t.equal(newer.ignored, null, 'finished later: it is the status');
  t.equal(newer.status?.finished_at, at(1), 'with its finish time recorded');
  t.equal(judge(late(finished('i3.0', at(0)), at(0))).ignored, null, 'the same millisecond: not earlier');
  t.equal(
    judge(late(finished('i3.0'), at(0))).ignored,
    null,
    'a status without finished_at (a timeout, or older)',
  );
  t.equal(judge(late(finished('i3.0', at(1)))).ignored, null, 'a result without finished_at');
  t.equal(judge(late(finished('i3.0', 'garbage'), at(0))).ignored, null, 'an unreadable finished_at');
  t.equal(judge(late(null, at(0))).status?.finished_at, at(0), 'nothing before: recorded');
  const pinned = judge({ ...late(null, '2099-01-01T00:00:00.000Z'), now: at(0) });
  t.equal(
    pinned.status?.finished_at,
    undefined,
    'a finish far past the judging time is not recorded (cannot pin the status)',
  );
});

t.test('alert payloads are exactly the documented shape (docs/events.md), with stable ids', async (t) => {
  const drift = judge(input('alert_only', 'check', OBSERVATIONS.drifted, null));
  const [alert] = drift.alerts;
  t.equal(
    JSON.stringify(alert?.payload),
    '{"event":"drift_detected","timestamp":"2025-03-13T14:22:01Z","agent":{"name":"web-01","labels":{"role":"web","env":"production"}},' +
      '"task":"certs","policy":"alert_only","remediation_status":"pending_manual","revision":"c0ffee","drifted_steps":["renew"]}',
  );
  t.ok(AlertPayloadSchema.safeParse(alert?.payload).success);
  t.equal(alert?.id, alertId('web-01', 'certs', 'i2.0', 'drift_detected'));
  t.match(alert?.id, /^alert-[0-9a-f]{32}$/);
  t.equal(
    judge(input('alert_only', 'check', OBSERVATIONS.drifted, null)).alerts[0]?.id,
    alert?.id,
    'same decision, same id',
  );
  t.not(alertId('web-01', 'certs', 'i3.0', 'drift_detected'), alert?.id, 'another episode');
  t.not(alertId('web-01', 'certs', 'i2.0', 'drift_remediated'), alert?.id, 'another event');
});
