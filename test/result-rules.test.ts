/**
 * The results rulebook (shared/result-rules.ts) on literal inputs: what each message, an
 * undeliverable instruction and a timeout do, which ones need the agent's labels, and how
 * refusals are classified (by code; by text only for receipts without one).
 */
import t from 'tap';
import type { TaskRunEvent } from '../shared/events.js';
import {
  type InstructionReceiptMessage,
  InstructionReceiptMessage as ReceiptSchema,
  type TaskResultMessage,
} from '../shared/protocol.js';
import { refusalCode } from '../shared/refusal-code.js';
import {
  BUSY_RETRIES,
  changesNoEpisode,
  decide,
  type Facts,
  type FoundInstruction,
  judgedTask,
  NEED_LABELS,
  type PlannedRecord,
  timeoutRule,
  timeoutSince,
  undeliverableRule,
} from '../shared/result-rules.js';
import type { DriftEpisode, TaskStatus } from '../shared/status.js';

const NOW = new Date('2025-03-13T14:22:01.000Z');
const LABELS = { role: 'web' };

const RECORD: PlannedRecord = {
  instruction_id: 'i-1',
  agent: 'web-01',
  trigger: 'commit',
  run_id: 'run-1',
  revision: 'c0ffee',
  retry: 0,
  tasks: [
    { task: 'web_config', execution_id: 'i-1.0', mode: 'apply', policy: 'remediate' },
    { task: 'motd', execution_id: 'i-1.1', mode: 'check', policy: 'alert_only' },
    { task: 'certs', execution_id: 'i-1.2', mode: 'apply', policy: 'remediate_and_alert' },
  ],
};

function found(record: Partial<PlannedRecord> = {}, pending = ['web_config', 'motd']): FoundInstruction {
  return { record: { ...RECORD, ...record }, pending };
}

function facts(over: Partial<Facts> = {}): Facts {
  return { previous: null, episode: null, labels: null, now: NOW, nowIso: NOW.toISOString(), ...over };
}

function receipt(
  accepted: boolean,
  reason: string | null,
  code?: InstructionReceiptMessage['code'],
): InstructionReceiptMessage {
  return {
    type: 'instruction_receipt',
    instruction_id: 'i-1',
    accepted,
    reason,
    ...(code ? { code } : {}),
  };
}

function taskResult(
  task: string,
  outcome: TaskResultMessage['outcome'],
  stepOutcome = outcome,
): TaskResultMessage {
  const planned = RECORD.tasks.find((p) => p.task === task);
  return {
    type: 'task_result',
    result_id: `r-${task}`,
    instruction_id: 'i-1',
    execution_id: planned?.execution_id ?? 'x',
    task,
    mode: planned?.mode ?? 'apply',
    outcome,
    started_at: '2025-03-13T14:22:00.000Z',
    finished_at: '2025-03-13T14:22:01.000Z',
    duration_ms: 1000,
    steps: [
      {
        step: 'config',
        type: 'shell',
        outcome: stepOutcome,
        exit_code: 0,
        apply_exit_code: stepOutcome === 'applied' ? 0 : null,
        duration_ms: 5,
        output_tail: '',
        error: null,
      },
    ],
  };
}

const status = (over: Partial<TaskStatus>): TaskStatus => ({
  task: 'web_config',
  outcome: 'satisfied',
  mode: 'apply',
  revision: 'c0ffee',
  execution_id: 'i-0.0',
  at: '2025-03-13T14:00:00.000Z',
  drifted_steps: [],
  failed_steps: [],
  policy: 'remediate',
  ...over,
});

t.test('refusal codes: the code decides; the text only for receipts without one', async (t) => {
  t.equal(refusalCode(receipt(false, 'whatever', 'busy')), 'busy');
  t.equal(refusalCode(receipt(false, 'duplicate instruction i-1', 'shutting_down')), 'shutting_down');
  t.equal(refusalCode(receipt(false, 'duplicate instruction i-1: already run by this agent')), 'duplicate');
  t.equal(refusalCode(receipt(false, 'task web is already executing (instruction i-0)')), 'busy');
  t.equal(refusalCode(receipt(false, 'agent is shutting down')), null);
  t.equal(refusalCode(receipt(false, null)), null);
  const wire = (code: unknown) =>
    ReceiptSchema.parse({
      type: 'instruction_receipt',
      instruction_id: 'i-1',
      accepted: false,
      reason: 'r',
      code,
    });
  t.equal(wire('invalid').code, 'invalid', 'a known code passes the schema');
  t.equal(wire('from_the_future').code, undefined, 'an unknown code reads as absent, the frame is kept');
  t.notOk(
    'code' in
      ReceiptSchema.parse({
        type: 'instruction_receipt',
        instruction_id: 'i-1',
        accepted: true,
        reason: null,
      }),
    'an older agent sends none',
  );
});

t.test('receipts', async (t) => {
  t.equal(decide(receipt(true, null), found(), facts()), 'accepted');
  t.equal(decide(receipt(false, 'x', 'duplicate'), found(), facts()), 'duplicate');
  t.equal(decide(receipt(true, null), null, facts()), 'unknown_instruction');

  t.same(
    decide(receipt(false, 'x', 'busy'), found({ trigger: 'drift_check' }, ['motd']), facts()),
    {
      kind: 'instruction',
      record: { ...RECORD, trigger: 'drift_check' },
      outcome: 'busy_skipped',
      retry: null,
      refused: null,
      tasks: ['motd'],
      events: [],
      finish: 'requeued',
      progress: false,
    },
    'a busy drift check: its tasks requeued, the instruction completed, nothing retried',
  );
  t.match(decide(receipt(false, 'x', 'busy'), found({ retry: 3 }), facts()), {
    kind: 'instruction',
    outcome: 'busy',
    retry: {
      agent: 'web-01',
      trigger: 'commit',
      run_id: 'run-1',
      tasks: ['web_config', 'motd', 'certs'],
      retry: 4,
      delayMs: 2000,
    },
    tasks: ['web_config', 'motd'],
    finish: 'requeued',
    progress: false,
  });
  t.equal(
    decide(receipt(false, 'x', 'busy'), found({}, []), facts()),
    'busy',
    'redelivered: retried already',
  );

  const refused = receipt(false, 'agent is shutting down', 'shutting_down');
  t.equal(decide(refused, found(), facts()), NEED_LABELS, 'undeliverable events carry labels');
  t.match(decide(refused, found({}, ['motd', 'web_config']), facts({ labels: LABELS })), {
    kind: 'instruction',
    outcome: 'refused',
    refused: 'agent is shutting down',
    tasks: ['web_config', 'motd'],
    events: [
      {
        kind: 'undeliverable',
        id: 'undeliverable:i-1.0',
        reason: 'refused: agent is shutting down',
        labels: LABELS,
      },
      { kind: 'undeliverable', id: 'undeliverable:i-1.1', reason: 'refused: agent is shutting down' },
    ],
    finish: 'undeliverable',
    progress: true,
  });
  t.match(
    decide(receipt(false, 'still busy', 'busy'), found({ retry: BUSY_RETRIES }), facts({ labels: LABELS })),
    { outcome: 'refused', refused: 'still busy' },
    'busy past the retry budget is a refusal',
  );
  t.match(
    decide(receipt(false, 'task web_config is already executing (instruction i-0)'), found(), facts()),
    { outcome: 'busy' },
    'an older agent (no code): read from the text',
  );
  t.match(decide(receipt(false, 'odd'), found({}, []), facts()), {
    outcome: 'refused',
    tasks: [],
    events: [],
  });
});

t.test('step results and unknown tasks', async (t) => {
  const step = {
    type: 'step_result' as const,
    result_id: 's-1',
    instruction_id: 'i-1',
    execution_id: 'i-1.0',
    task: 'web_config',
    result: taskResult('web_config', 'satisfied').steps[0] as TaskResultMessage['steps'][number],
  };
  t.equal(decide(step, found(), facts()), 'progress');
  t.equal(judgedTask(step, RECORD), null, 'nothing to read for it');
  const stray = { ...taskResult('web_config', 'satisfied'), task: 'no_such_task' };
  t.equal(decide(stray, found(), facts()), 'unknown_task');
  t.equal(judgedTask(stray, RECORD), null);
  t.equal(judgedTask(taskResult('motd', 'drifted'), RECORD), 'motd');
});

t.test('task results', async (t) => {
  const first = taskResult('web_config', 'applied');
  t.equal(decide(first, found(), facts()), NEED_LABELS, 'recorded, so it needs the labels');
  const effects = decide(first, found(), facts({ labels: LABELS }));
  t.match(effects, {
    kind: 'task',
    outcome: 'applied',
    task: 'web_config',
    event: { kind: 'task_run', id: 'task_run:i-1.0', labels: LABELS, outcome: 'applied', trigger: 'commit' },
    verdict: {
      ignored: null,
      status: { task: 'web_config', outcome: 'applied', execution_id: 'i-1.0', drifted_steps: ['config'] },
      openEpisode: { id: 'i-1.0', task: 'web_config' },
      closeEpisode: 'i-1.0',
      alerts: [],
    },
    finish: 'applied',
  });
  t.ok(
    typeof effects === 'object' && effects.kind === 'task' && changesNoEpisode(effects.verdict),
    'opened and closed by one verdict: no episode change',
  );
  t.equal((effects as { event: TaskRunEvent }).event.at, NOW.toISOString());

  // A drift check that finds what the last one found: no event, so no labels needed.
  const quiet = decide(
    taskResult('web_config', 'satisfied'),
    found({ trigger: 'drift_check' }),
    facts({ previous: status({}) }),
  );
  t.match(quiet, {
    kind: 'task',
    outcome: 'satisfied',
    event: null,
    verdict: { ignored: null, status: { outcome: 'satisfied', execution_id: 'i-1.0' } },
    finish: 'satisfied',
  });

  const again = decide(
    first,
    found(),
    facts({ labels: LABELS, previous: status({ execution_id: 'i-1.0' }) }),
  );
  t.match(
    again,
    { kind: 'task', verdict: { ignored: 'duplicate', status: null }, finish: 'applied' },
    'a redelivered result is judged already, and still finishes its task',
  );
  t.match(decide(taskResult('web_config', 'skipped', 'skipped'), found(), facts({ labels: LABELS })), {
    verdict: { ignored: 'skipped' },
    finish: 'skipped',
  });
});

t.test('check results: decisive drift alerts before the apply ends', async (t) => {
  const check = {
    type: 'check_result' as const,
    result_id: 'c-1',
    instruction_id: 'i-1',
    execution_id: 'i-1.2',
    task: 'certs',
    step: 'banner',
    satisfied: false,
    exit_code: 1,
    duration_ms: 2,
    output_tail: '',
  };
  t.equal(decide(check, found(), facts()), NEED_LABELS, 'an alert carries the labels');
  const effects = decide(check, found(), facts({ labels: LABELS }));
  t.match(effects, {
    kind: 'task',
    outcome: 'check',
    event: null,
    finish: null,
    verdict: {
      status: null,
      openEpisode: { id: 'i-1.2', drifted_steps: ['banner'] },
      alerts: [{ payload: { event: 'drift_detected', agent: { name: 'web-01', labels: LABELS } } }],
    },
  });
  t.notOk(typeof effects === 'object' && effects.kind === 'task' && changesNoEpisode(effects.verdict));
  const episode: DriftEpisode = {
    id: 'i-0.2',
    task: 'certs',
    opened_at: '2025-03-13T14:00:00.000Z',
    revision: 'c0ffee',
    policy: 'remediate_and_alert',
    drifted_steps: ['banner'],
    alerts: ['drift_detected'],
  };
  t.match(
    decide(check, found(), facts({ episode })),
    { kind: 'task', outcome: 'check', verdict: { ignored: null, alerts: [], openEpisode: null } },
    'alerted already in this episode: no labels needed, nothing to change',
  );
  t.match(decide({ ...check, satisfied: true }, found(), facts()), { verdict: { ignored: 'not_decisive' } });
  t.match(
    decide({ ...check, task: 'motd', execution_id: 'i-1.1' }, found(), facts()),
    { verdict: { ignored: 'not_decisive' } },
    'check mode: the task_result will say everything',
  );
});

t.test('timeouts and undeliverable instructions', async (t) => {
  const planned = RECORD.tasks[0] as PlannedRecord['tasks'][number];
  t.equal(timeoutRule(RECORD, planned, 60_000, facts()), NEED_LABELS);
  t.match(timeoutRule(RECORD, planned, 60_000, facts({ labels: LABELS })), {
    kind: 'task',
    outcome: 'timeout',
    event: { kind: 'timeout', id: 'timeout:i-1.0', waited_ms: 60_000, labels: LABELS },
    verdict: { status: { outcome: 'timeout', execution_id: 'i-1.0' }, openEpisode: { id: 'i-1.0' } },
    finish: 'timeout',
  });
  t.match(
    timeoutRule(
      RECORD,
      planned,
      60_000,
      facts({ labels: LABELS, previous: status({ execution_id: 'i-1.0' }) }),
    ),
    { verdict: { ignored: 'superseded' }, event: null, finish: 'timeout' },
    'its result came first: the timeout only finishes the task',
  );

  // The gateway holding the instruction died; the agent's connect check on another one ran later.
  const issued = { ...RECORD, created_at: '2025-03-13T14:20:00.000Z' };
  const newer = status({ execution_id: 'i-2.0', issued_at: '2025-03-13T14:20:05.000Z' });
  t.match(
    timeoutRule(issued, planned, 60_000, facts({ previous: newer })),
    {
      kind: 'task',
      outcome: 'superseded',
      event: null,
      verdict: { ignored: 'superseded', status: null },
      finish: 'timeout',
    },
    'a later instruction was heard from: no status, no event, no labels needed; the task still finishes',
  );
  const older = status({
    execution_id: 'i-0.0',
    issued_at: '2025-03-13T14:19:00.000Z',
    at: NOW.toISOString(),
  });
  t.equal(timeoutRule(issued, planned, 60_000, facts({ previous: older })), NEED_LABELS);
  t.match(
    timeoutRule(issued, planned, 60_000, facts({ previous: older, labels: LABELS })),
    {
      outcome: 'timeout',
      event: { kind: 'timeout', id: 'timeout:i-1.0' },
      verdict: {
        ignored: null,
        status: { outcome: 'timeout', execution_id: 'i-1.0', issued_at: issued.created_at },
      },
    },
    'an earlier instruction judged later: this one may really hang, it still times out',
  );
  // The stale-routed case: sent to the old session after the connect check on the new one was issued.
  const lateToOld = { ...RECORD, created_at: '2025-03-13T14:20:10.000Z' };
  const since = timeoutSince(
    { ...lateToOld, session_id: 's-old' },
    { session_id: 's-new', connected_at: Date.parse('2025-03-13T14:20:04.000Z') },
  );
  t.equal(since, '2025-03-13T14:20:04.000Z', 'another session now: since it started');
  t.match(
    timeoutRule(lateToOld, planned, 60_000, facts({ previous: newer }), since),
    { outcome: 'superseded', event: null, verdict: { ignored: 'superseded' } },
    'the current session reported after it started: superseded',
  );
  t.equal(
    timeoutRule(lateToOld, planned, 60_000, facts({ previous: newer })),
    NEED_LABELS,
    'without the session, the later instruction times out (and wants the labels for its event)',
  );
  t.equal(
    timeoutSince(
      { ...lateToOld, session_id: 's-1' },
      { session_id: 's-1', connected_at: Date.parse('2025-03-13T14:00:00.000Z') },
    ),
    lateToOld.created_at,
    'same session (a hung execution): its creation',
  );
  t.equal(
    timeoutSince({ ...lateToOld, session_id: 's-1' }, null),
    lateToOld.created_at,
    'agent gone: its creation',
  );
  t.equal(
    timeoutSince(
      { ...lateToOld, session_id: 's-1' },
      { session_id: 's-2', connected_at: Date.parse('2025-03-13T14:30:00.000Z') },
    ),
    lateToOld.created_at,
    'a session started after it: its creation',
  );
  t.equal(
    timeoutSince({ session_id: 's-1' }, { session_id: 's-2', connected_at: 0 }),
    undefined,
    'creation unknown',
  );
  t.match(
    decide(
      taskResult('web_config', 'applied'),
      found({ created_at: issued.created_at }),
      facts({ labels: LABELS }),
    ),
    { verdict: { status: { execution_id: 'i-1.0', issued_at: issued.created_at } } },
    'results record when their instruction was created',
  );

  t.equal(undeliverableRule(found(), 'agent offline', facts()), NEED_LABELS);
  t.match(undeliverableRule(found({}, ['motd']), 'agent offline', facts({ labels: LABELS })), {
    kind: 'instruction',
    outcome: 'undeliverable',
    refused: null,
    retry: null,
    tasks: ['motd'],
    events: [{ kind: 'undeliverable', id: 'undeliverable:i-1.1', reason: 'agent offline' }],
    finish: 'undeliverable',
    progress: true,
  });
  t.match(undeliverableRule(found({}, []), 'agent offline', facts()), { tasks: [], events: [] });
});
