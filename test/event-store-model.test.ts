/** The pure half of the event store: ids, ordering keys, cursors, event builders (shared/events.ts). */
import t from 'tap';
import {
  compareSortKeys,
  decodeCursor,
  encodeCursor,
  eventIdFor,
  eventSortKey,
  FlukeEvent,
  InvalidCursorError,
  MAX_EVENT_OUTPUT_CHARS,
  newEventId,
  parseSortKey,
  taskRunEvent,
  timeoutEvent,
  undeliverableEvent,
} from '../shared/events.js';
import type { TaskResultMessage } from '../shared/protocol.js';

const ctx = {
  agent: 'web-01',
  labels: { role: 'web' },
  revision: 'c0ffee',
  trigger: 'commit',
  policy: 'remediate',
  instruction_id: 'i1',
  at: new Date('2025-03-13T14:22:01.500Z'),
} as const;

t.test('ids: time-sortable when fresh, derived when they must survive a retry', async (t) => {
  const a = newEventId(1_000);
  const b = newEventId(2_000);
  const c = newEventId(1_741_875_721_000);
  t.ok(a < b && b < c, `${a} < ${b} < ${c}`);
  t.not(newEventId(1_000), a, 'random part');
  t.equal(eventIdFor('task_run', 'i1.0'), 'task_run:i1.0');
  t.equal(eventIdFor('timeout', 'i1.0'), 'timeout:i1.0');
});

t.test('sort keys order by time, agent, id and parse back', async (t) => {
  const key = eventSortKey({ at: '2025-03-13T14:22:01.500Z', agent: 'web-01', id: 'e1' });
  t.same(parseSortKey(key), { ms: Date.parse('2025-03-13T14:22:01.500Z'), agent: 'web-01', id: 'e1' });
  const keys = [
    eventSortKey({ at: '2025-03-13T14:22:01.501Z', agent: 'a', id: 'x' }),
    eventSortKey({ at: '2025-03-13T14:22:01.500Z', agent: 'b', id: 'a' }),
    eventSortKey({ at: '2025-03-13T14:22:01.500Z', agent: 'a', id: 'z' }),
    eventSortKey({ at: '2025-03-13T14:22:01.500Z', agent: 'a', id: 'y' }),
    eventSortKey({ at: '1999-01-01T00:00:00.000Z', agent: 'zzz', id: 'z' }),
  ];
  t.same([...keys].sort(compareSortKeys), [keys[4], keys[3], keys[2], keys[1], keys[0]]);
  t.ok(compareSortKeys('\u{1F600}', '\uFFFD') > 0, 'byte order, as Redis compares');
  t.equal(parseSortKey('garbage'), null);
  t.throws(() => eventSortKey({ at: 'yesterday', agent: 'a', id: 'b' }), RangeError);
});

t.test('cursors are opaque and checked', async (t) => {
  const key = eventSortKey({ at: '2025-03-13T14:22:01.500Z', agent: 'web-01', id: 'e1' });
  t.equal(decodeCursor(encodeCursor(key)), key);
  t.match(encodeCursor(key), /^[A-Za-z0-9_-]+$/);
  t.throws(() => decodeCursor('bm9wZQ'), InvalidCursorError);
});

t.test('event builders cap output and validate', async (t) => {
  const result: TaskResultMessage = {
    type: 'task_result',
    result_id: 'r1',
    instruction_id: 'i1',
    execution_id: 'i1.0',
    task: 'deploy',
    mode: 'apply',
    outcome: 'applied',
    started_at: '2025-03-13T14:21:59.000Z',
    finished_at: '2025-03-13T14:22:01.000Z',
    duration_ms: 2000,
    steps: [
      {
        step: 'config',
        type: 'shell',
        outcome: 'applied',
        exit_code: 0,
        apply_exit_code: 0,
        duration_ms: 1900,
        output_tail: `${'x'.repeat(10_000)}END`,
        error: null,
      },
    ],
  };
  const run = taskRunEvent(result, ctx);
  t.equal(run.id, 'task_run:i1.0');
  t.equal(run.at, '2025-03-13T14:22:01.500Z');
  t.equal(run.steps[0]?.output_tail.length, MAX_EVENT_OUTPUT_CHARS);
  t.ok(run.steps[0]?.output_tail.endsWith('END'), 'the tail is kept');
  t.equal(result.steps[0]?.output_tail.length, 10_003, 'the input is not changed');
  t.ok(FlukeEvent.safeParse(run).success);

  const timeout = timeoutEvent(
    { task: 'deploy', execution_id: 'i1.0', mode: 'apply', waited_ms: 60_000 },
    ctx,
  );
  t.same(timeout, {
    kind: 'timeout',
    id: 'timeout:i1.0',
    at: '2025-03-13T14:22:01.500Z',
    agent: 'web-01',
    labels: { role: 'web' },
    task: 'deploy',
    revision: 'c0ffee',
    trigger: 'commit',
    mode: 'apply',
    policy: 'remediate',
    instruction_id: 'i1',
    execution_id: 'i1.0',
    outcome: 'timeout',
    waited_ms: 60_000,
  });
  t.ok(FlukeEvent.safeParse(timeout).success);
  const undeliverable = undeliverableEvent(
    { task: 'deploy', execution_id: 'i1.0', mode: 'check', reason: 'gone' },
    ctx,
  );
  t.equal(undeliverable.id, 'undeliverable:i1.0');
  t.ok(FlukeEvent.safeParse(undeliverable).success);
  t.notOk(FlukeEvent.safeParse({ ...timeout, agent: 'a\0b' }).success, 'NUL would break index members');
});
