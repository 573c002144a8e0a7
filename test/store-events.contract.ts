/**
 * The event store contract (store/events/event-store.ts), run against the memory twin and the
 * Redis implementation by store-events.test.ts.
 */
import type { Test } from 'tap';
import { type FlukeEvent, InvalidCursorError, type TaskRunEvent } from '../shared/events.js';
import type { EventStore } from '../store/events/event-store.js';

export interface EventStoreHarness {
  make(options: { maxEventsPerAgent: number }): Promise<EventStore>;
}

export const T0 = Date.UTC(2025, 2, 13, 14, 22, 1);

export function runEvent(id: string, agent: string, task: string, atMs: number): TaskRunEvent {
  return {
    kind: 'task_run',
    id,
    at: new Date(atMs).toISOString(),
    agent,
    labels: { role: 'web', env: 'production' },
    task,
    revision: 'c0ffee',
    trigger: 'drift_check',
    mode: 'apply',
    policy: 'remediate',
    instruction_id: `i-${id}`,
    execution_id: `x-${id}`,
    outcome: 'applied',
    started_at: new Date(atMs - 1500).toISOString(),
    finished_at: new Date(atMs - 10).toISOString(),
    duration_ms: 1490,
    steps: [
      {
        step: 'config',
        type: 'shell',
        outcome: 'applied',
        exit_code: 0,
        apply_exit_code: 0,
        duration_ms: 1400,
        output_tail: 'copied\n',
        error: null,
      },
    ],
  };
}

const ids = (events: FlukeEvent[]) => events.map((e) => e.id);

async function all(
  store: EventStore,
  query: { agent?: string; task?: string },
  limit: number,
): Promise<string[]> {
  const seen: string[] = [];
  let before: string | null = null;
  for (let pages = 0; pages < 100; pages++) {
    const page = await store.query({ ...query, limit, before });
    seen.push(...ids(page.events));
    if (page.next_cursor === null) return seen;
    before = page.next_cursor;
  }
  throw new Error('cursor never ended');
}

export function eventStoreContract(t: Test, harness: EventStoreHarness): void {
  t.test('records and returns events newest first, by agent, task, both, or all', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 100 });
    t.teardown(() => store.close());
    await store.record(runEvent('e1', 'web-01', 'deploy', T0));
    await store.record(runEvent('e3', 'web-01', 'certs', T0 + 2000));
    await store.record(runEvent('e2', 'web-02', 'deploy', T0 + 1000));
    await store.record(runEvent('e4', 'web-02', 'certs', T0 + 3000));

    t.same(ids((await store.query({ limit: 10 })).events), ['e4', 'e3', 'e2', 'e1']);
    t.same(ids((await store.query({ agent: 'web-01', limit: 10 })).events), ['e3', 'e1']);
    t.same(ids((await store.query({ task: 'deploy', limit: 10 })).events), ['e2', 'e1']);
    t.same(ids((await store.query({ agent: 'web-02', task: 'certs', limit: 10 })).events), ['e4']);
    t.same((await store.query({ agent: 'nobody', limit: 10 })).events, []);
    t.same((await store.query({ task: 'nothing', limit: 10 })).next_cursor, null);
    t.same(
      (await store.query({ agent: 'web-01', task: 'deploy', limit: 10 })).events,
      [runEvent('e1', 'web-01', 'deploy', T0)],
      'stored whole',
    );
    t.equal(await store.size(), 4);
  });

  t.test('limit, and a cursor that pages without gaps or repeats, ties included', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 100 });
    t.teardown(() => store.close());
    const expected: string[] = [];
    for (let i = 0; i < 30; i++) {
      // Three events share each millisecond, across agents, so ordering within a tie matters.
      const at = T0 + Math.floor(i / 3);
      const id = `ev-${String(i).padStart(2, '0')}`;
      await store.record(runEvent(id, `web-0${i % 3}`, i % 2 === 0 ? 'even' : 'odd', at));
      expected.unshift(id);
    }
    const first = await store.query({ limit: 7 });
    t.equal(first.events.length, 7);
    t.type(first.next_cursor, 'string');
    t.same(await all(store, {}, 7), expected);
    t.same(await all(store, {}, 30), expected, 'an exact fit has no next cursor');
    t.same(
      await all(store, { task: 'even' }, 4),
      expected.filter((id) => Number(id.slice(3)) % 2 === 0),
    );
    t.same(
      await all(store, { agent: 'web-01' }, 3),
      expected.filter((id) => Number(id.slice(3)) % 3 === 1),
    );
    t.same(
      await all(store, { agent: 'web-01', task: 'odd' }, 2),
      expected.filter((id) => Number(id.slice(3)) % 3 === 1 && Number(id.slice(3)) % 2 === 1),
    );
    t.equal((await store.query({ limit: 0 })).events.length, 1, 'limit is clamped to at least 1');
  });

  t.test('get: one event by agent and id', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 2 });
    t.teardown(() => store.close());
    await store.record(runEvent('g1', 'web-01', 'deploy', T0));
    t.same(await store.get('web-01', 'g1'), runEvent('g1', 'web-01', 'deploy', T0));
    t.equal(await store.get('web-02', 'g1'), null, 'another agent has no such event');
    t.equal(await store.get('web-01', 'nope'), null);
    await store.record(runEvent('g2', 'web-01', 'deploy', T0 + 1));
    await store.record(runEvent('g3', 'web-01', 'deploy', T0 + 2));
    t.equal(await store.get('web-01', 'g1'), null, 'trimmed by the per-agent bound');
  });

  t.test('recording the same id twice keeps one event, at its first time', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 100 });
    t.teardown(() => store.close());
    t.equal(await store.record(runEvent('dup', 'web-01', 'deploy', T0)), true);
    t.equal(await store.record(runEvent('dup', 'web-01', 'deploy', T0)), false);
    t.equal(
      await store.record(runEvent('dup', 'web-01', 'deploy', T0 + 5000)),
      false,
      'a retry judged later',
    );
    await store.record(runEvent('other', 'web-01', 'deploy', T0 + 1000));
    for (const query of [{}, { agent: 'web-01' }, { task: 'deploy' }]) {
      const page = await store.query({ ...query, limit: 10 });
      t.same(ids(page.events), ['other', 'dup']);
      t.equal(page.events[1]?.at, new Date(T0).toISOString());
    }
    t.equal(await store.size(), 2);
  });

  t.test('recordMany: the same as recording one by one, repeats included', async (t) => {
    const one = await harness.make({ maxEventsPerAgent: 4 });
    const many = await harness.make({ maxEventsPerAgent: 4 });
    t.teardown(() => one.close());
    t.teardown(() => many.close());
    const first = [
      runEvent('a0', 'web-01', 'deploy', T0),
      runEvent('a1', 'web-01', 'certs', T0 + 1),
      runEvent('b0', 'web-02', 'deploy', T0 + 2),
    ];
    const second = [
      runEvent('a0', 'web-01', 'deploy', T0 + 5000),
      ...[2, 3, 4, 5].map((i) => runEvent(`a${i}`, 'web-01', i % 2 ? 'certs' : 'deploy', T0 + 10 + i)),
      runEvent('a5', 'web-01', 'certs', T0 + 99),
      runEvent('b1', 'web-02', 'certs', T0 + 20),
    ];
    const created: boolean[] = [];
    for (const e of [...first, ...second]) created.push(await one.record(e));
    t.same(await many.recordMany([]), []);
    t.same([...(await many.recordMany(first)), ...(await many.recordMany(second))], created);
    t.same(created, [true, true, true, false, true, true, true, true, false, true]);
    for (const query of [
      {},
      { agent: 'web-01' },
      { agent: 'web-02' },
      { task: 'deploy' },
      { task: 'certs' },
    ]) {
      t.same(
        await many.query({ ...query, limit: 50 }),
        await one.query({ ...query, limit: 50 }),
        JSON.stringify(query),
      );
    }
    t.equal(await many.size(), await one.size());
  });

  t.test('each agent keeps only its newest maxEventsPerAgent events', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 3 });
    t.teardown(() => store.close());
    for (let i = 0; i < 6; i++) await store.record(runEvent(`a${i}`, 'web-01', 'deploy', T0 + i));
    await store.record(runEvent('b0', 'web-02', 'deploy', T0 - 1));
    t.same(ids((await store.query({ agent: 'web-01', limit: 10 })).events), ['a5', 'a4', 'a3']);
    t.same(ids((await store.query({ task: 'deploy', limit: 10 })).events), ['a5', 'a4', 'a3', 'b0']);
    t.same(await all(store, {}, 2), ['a5', 'a4', 'a3', 'b0']);
    t.equal(await store.size(), 4);
  });

  t.test('every event kind round-trips', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 10 });
    t.teardown(() => store.close());
    const base = { agent: 'web-01', labels: {}, task: 'deploy', revision: 'c0ffee' };
    const run = {
      trigger: 'commit',
      mode: 'check',
      policy: 'alert_only',
      instruction_id: 'i1',
      execution_id: 'i1.0',
    } as const;
    const events: FlukeEvent[] = [
      {
        kind: 'timeout',
        id: 'timeout:i1.0',
        at: new Date(T0).toISOString(),
        ...base,
        ...run,
        outcome: 'timeout',
        waited_ms: 60000,
      },
      {
        kind: 'undeliverable',
        id: 'undeliverable:i1.0',
        at: new Date(T0 + 1).toISOString(),
        ...base,
        ...run,
        reason: 'not connected',
      },
      {
        kind: 'alert_failed',
        id: 'alert_failed:alert-1',
        at: new Date(T0 + 2).toISOString(),
        ...base,
        alert_id: 'alert-1',
        alert_event: 'drift_detected',
        attempts: 8,
        error: 'HTTP 503',
      },
    ];
    for (const e of events) await store.record(e);
    t.same((await store.query({ limit: 10 })).events, [...events].reverse());
  });

  t.test('a cursor the store did not hand out is refused', async (t) => {
    const store = await harness.make({ maxEventsPerAgent: 10 });
    t.teardown(() => store.close());
    await t.rejects(store.query({ limit: 5, before: 'not-a-cursor' }), InvalidCursorError);
  });
}
