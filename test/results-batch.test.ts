/**
 * Batched results jobs (resultsHandler) against the single-message handler (resultHandler), on
 * the in-memory fakes and on the Redis stores production wires (one auto-pipelined client): the
 * same messages give the same events, statuses, episodes, alerts, run progress and finished
 * tasks, whichever path (judged in memory, or through resultHandler) each message takes; a
 * redelivered job changes nothing; and quiet results take the in-memory path, reading each
 * record and snapshot once per job.
 */
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { type ResultDeps, resultHandler, resultsHandler } from '../reconciler/handlers/result.js';
import type { Alert } from '../shared/alerts.js';
import type { ResultJob } from '../shared/jobs/payloads.js';
import { Keys } from '../shared/keys.js';
import type { Trigger } from '../shared/plan.js';
import type { StepResultMessage } from '../shared/protocol.js';
import type { DriftPolicy, RunMode } from '../shared/types.js';
import { MemoryEventStore } from '../store/events/memory-event-store.js';
import { RedisEventStore } from '../store/events/redis-event-store.js';
import type { InstructionRecord, InstructionStore } from '../store/instructions/instruction-store.js';
import { MemoryInstructionStore } from '../store/instructions/memory-instruction-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { MemoryRunStore } from '../store/runs/memory-run-store.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import type { RunStore } from '../store/runs/run-store.js';
import { MemoryStatusStore } from '../store/statuses/memory-status-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import type { StatusStore } from '../store/statuses/status-store.js';
import { startRedis } from '../testkit/redis.js';
import {
  checkResult,
  dispatchRecord,
  receipt,
  resultJob,
  silentLogger,
  stepResult as stepOutcome,
  taskResult,
} from './helpers/reconciler-fakes.js';

const T0 = Date.parse('2025-03-13T14:22:01.000Z');
const AGENTS = ['db-01', 'web-01', 'web-02'];
const TASKS = ['certs', 'db_backup', 'motd', 'web_config'];

type Single = Extract<ResultJob, { kind: 'result' }>;

interface World {
  deps: ResultDeps;
  /** deps.statuses, with the whole StatusStore surface (to read the state back). */
  statuses: StatusStore;
  alerts: Alert[];
  dispatch(record: InstructionRecord): Promise<void>;
  /** Everything a job can change, in a comparable form. */
  state(ids: string[]): Promise<unknown>;
  /** Counts of store calls by name, since the last reset. */
  calls: Map<string, number>;
}

/** Wraps every method of `target` to count its calls under `prefix.method`. */
function counted<T extends object>(target: T, prefix: string, calls: Map<string, number>): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        const name = `${prefix}.${prop}`;
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return value.apply(obj, args);
      };
    },
  });
}

const LABELS: Record<string, Record<string, string>> = {
  'web-01': { role: 'web' },
  'web-02': { role: 'web' },
  'db-01': { role: 'db' },
};

function baseDeps(alerts: Alert[], calls: Map<string, number>) {
  return {
    labelsOf: async (agent: string) => {
      calls.set('labelsOf', (calls.get('labelsOf') ?? 0) + 1);
      return LABELS[agent] ?? {};
    },
    enqueueAlert: async (alert: Alert) => {
      alerts.push(alert);
    },
    retryLater: async () => {},
    logger: silentLogger,
    now: () => new Date(T0),
  };
}

interface Stores {
  instructions: ResultDeps['instructions'] & Pick<InstructionStore, 'save'>;
  events: ResultDeps['events'];
  statuses: StatusStore;
  runs: ResultDeps['runs'] & Pick<RunStore, 'get' | 'create' | 'setAgents' | 'setAgentState'>;
}

/** A world over these stores: store calls counted, dispatch as reconcile-agent records it. */
function world(stores: Stores, extra?: (ids: string[]) => Promise<Record<string, unknown>>): World {
  const calls = new Map<string, number>();
  const alerts: Alert[] = [];
  const { instructions, runs } = stores;
  const statuses = counted(stores.statuses, 'statuses', calls);
  const deps: ResultDeps = {
    ...baseDeps(alerts, calls),
    instructions: counted(instructions, 'instructions', calls),
    events: stores.events,
    statuses,
    runs,
  };
  return {
    deps,
    statuses,
    alerts,
    calls,
    dispatch: async (record) => {
      await dispatchRecord(instructions, runs, record);
    },
    state: async (ids) => ({ ...(await snapshotState(deps, statuses, ids, runs)), ...(await extra?.(ids)) }),
  };
}

function memoryWorld(): World {
  return world({
    instructions: new MemoryInstructionStore(),
    events: new MemoryEventStore({ maxEventsPerAgent: 1000 }),
    statuses: new MemoryStatusStore({ ttlMs: 3_600_000, now: () => T0 }),
    runs: new MemoryRunStore(),
  });
}

function redisWorld(client: Redis, url: string, prefix: string): World {
  const keys = new Keys(prefix);
  // As reconciler.ts wires it: the stores share one auto-pipelined connection.
  const store = new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: null });
  t.teardown(() => store.disconnect());
  return world(
    {
      instructions: new RedisInstructionStore({ redis: store, keys }),
      events: new RedisEventStore({ redis: store, keys, ttlMs: 3_600_000, now: () => T0 }),
      statuses: new RedisStatusStore({ redis: store, keys, ttlMs: 3_600_000 }),
      runs: new RedisRunStore({ redis: store, keys }),
    },
    async (ids) => ({
      // Completed records keep minutes, pending ones a day.
      ttl: await Promise.all(
        ids.map(async (id) => {
          const ms = await client.pttl(keys.instruction(id));
          return ms < 0 ? ms : ms <= 600_000 ? 'completed' : 'open';
        }),
      ),
    }),
  );
}

async function snapshotState(
  deps: ResultDeps,
  statuses: StatusStore,
  ids: string[],
  runs: { get(id: string): Promise<unknown> },
): Promise<Record<string, unknown>> {
  const { instructions, events } = deps;
  return {
    events: (await (events as MemoryEventStore).query({ limit: 1000 })).events,
    statuses: await Promise.all(AGENTS.map((a) => statuses.listStatuses(a))),
    problems: await statuses.listProblems(),
    episodes: await Promise.all(
      AGENTS.flatMap((a) => TASKS.map(async (task) => [a, task, await statuses.getEpisode(a, task)])),
    ),
    instructions: await Promise.all(ids.map((id) => instructions.get(id))),
    run: await runs.get('run-1'),
  };
}

function instruction(
  id: string,
  agent: string,
  trigger: Trigger,
  tasks: [string, RunMode, DriftPolicy][],
  runId: string | null = null,
): InstructionRecord {
  return {
    instruction_id: id,
    agent,
    session_id: `s-${agent}`,
    trigger,
    run_id: runId,
    revision: 'c0ffee',
    created_at: new Date(T0).toISOString(),
    retry: 0,
    tasks: tasks.map(([task, mode, policy], i) => ({ task, execution_id: `${id}.${i}`, mode, policy })),
  };
}

function check(record: InstructionRecord, task: string, step: string, satisfied: boolean): Single {
  const executionId = record.tasks.find((p) => p.task === task)?.execution_id ?? 'x';
  return checkResult(record, executionId, task, step, satisfied) as Single;
}

function stepResult(record: InstructionRecord, task: string): Single {
  const planned = record.tasks.find((p) => p.task === task);
  const message: StepResultMessage = {
    type: 'step_result',
    result_id: `s-${record.instruction_id}-${task}`,
    instruction_id: record.instruction_id,
    execution_id: planned?.execution_id ?? 'x',
    task,
    result: stepOutcome('config', 'satisfied'),
  };
  return resultJob(record, message) as Single;
}

/** Round 1: first results (recorded), drift that opens episodes and alerts, and odd messages. */
function round1() {
  const i1 = instruction('i-1', 'web-01', 'drift_check', [
    ['web_config', 'apply', 'remediate'],
    ['motd', 'check', 'alert_only'],
    ['certs', 'apply', 'remediate_and_alert'],
  ]);
  const i2 = instruction('i-2', 'web-02', 'drift_check', [
    ['web_config', 'apply', 'remediate'],
    ['certs', 'apply', 'remediate'],
  ]);
  const i3 = instruction(
    'i-3',
    'db-01',
    'manual',
    [
      ['db_backup', 'apply', 'remediate_and_alert'],
      ['web_config', 'apply', 'remediate'],
    ],
    'run-1',
  );
  const unknown = instruction('i-404', 'web-02', 'drift_check', [['web_config', 'apply', 'remediate']]);
  const messages: Single[] = [
    receipt(i1, true, null) as Single,
    receipt(i2, true, null) as Single,
    receipt(i3, true, null) as Single,
    taskResult(i1, 'web_config', 'satisfied', [['config', 'satisfied', null]]) as Single,
    stepResult(i2, 'web_config'),
    {
      ...(taskResult(i2, 'web_config', 'satisfied', [['config', 'satisfied', null]]) as Single),
      message: {
        ...(taskResult(i2, 'web_config', 'satisfied', [['config', 'satisfied', null]]) as Single).message,
        task: 'no_such_task',
      } as Single['message'],
    },
    // Opens the episode and alerts before the apply ends.
    check(i1, 'certs', 'renew', false),
    taskResult(i1, 'motd', 'drifted', [['motd', 'drifted', null]]) as Single,
    // remediate: an episode opened and closed by one verdict, nothing to alert.
    taskResult(i2, 'web_config', 'applied', [['config', 'applied', 0]]) as Single,
    // A failure under remediate: an episode opens, silently.
    taskResult(i2, 'certs', 'failed', [['renew', 'failed', null]]) as Single,
    taskResult(i3, 'db_backup', 'failed', [['timer', 'failed', 1]]) as Single,
    receipt(unknown, true, null) as Single,
    taskResult(i1, 'certs', 'applied', [['renew', 'applied', 0]]) as Single,
    taskResult(i3, 'web_config', 'satisfied', [['config', 'satisfied', null]]) as Single,
  ];
  return { records: [i1, i2, i3], messages, ids: ['i-1', 'i-2', 'i-3', 'i-404'] };
}

/** Round 2: the next drift checks, mostly quiet; one change; a busy drift check. */
function round2() {
  const i11 = instruction('i-11', 'web-01', 'drift_check', [
    ['web_config', 'apply', 'remediate'],
    ['motd', 'check', 'alert_only'],
    ['certs', 'apply', 'remediate_and_alert'],
  ]);
  const i12 = instruction('i-12', 'web-02', 'drift_check', [
    ['web_config', 'apply', 'remediate'],
    ['certs', 'apply', 'remediate'],
  ]);
  const i13 = instruction('i-13', 'db-01', 'drift_check', [
    ['db_backup', 'apply', 'remediate_and_alert'],
    ['web_config', 'apply', 'remediate'],
  ]);
  const messages: Single[] = [
    receipt(i11, true, null) as Single,
    taskResult(i11, 'web_config', 'satisfied', [['config', 'satisfied', null]]) as Single,
    // Still drifted, alert already sent: quiet.
    taskResult(i11, 'motd', 'drifted', [['motd', 'drifted', null]]) as Single,
    taskResult(i11, 'certs', 'satisfied', [['renew', 'satisfied', null]]) as Single,
    // Was applied, now satisfied: recorded, not quiet.
    taskResult(i12, 'web_config', 'satisfied', [['config', 'satisfied', null]]) as Single,
    // ... and closes, silently.
    taskResult(i12, 'certs', 'satisfied', [['renew', 'satisfied', null]]) as Single,
    // The task db_backup is being applied: this drift check is skipped.
    receipt(i13, false, 'task "db_backup" is already executing (instruction i-3)') as Single,
  ];
  return { records: [i11, i12, i13], messages, ids: ['i-11', 'i-12', 'i-13'] };
}

/** The messages as gateways batch them: two jobs, web-01's messages split across both. */
function jobsOf(messages: Single[]): Extract<ResultJob, { kind: 'results' }>[] {
  const items = messages.map((m) => ({
    agent: m.agent,
    session_id: m.session_id,
    received_at: m.received_at,
    message: m.message,
  }));
  const cut = Math.ceil(items.length / 2);
  return [
    { kind: 'results', gateway_id: 'gw-1', items: items.slice(0, cut) },
    { kind: 'results', gateway_id: 'gw-1', items: items.slice(cut) },
  ];
}

/** The messages as one job. */
function oneJob(messages: ResultJob[]): Extract<ResultJob, { kind: 'results' }> {
  return {
    kind: 'results',
    gateway_id: 'gw-1',
    items: messages.map((j) => {
      const m = j as Single;
      return { agent: m.agent, session_id: m.session_id, received_at: m.received_at, message: m.message };
    }),
  };
}

const byId = (alerts: Alert[]) => alerts.map((a) => a.id).sort();

async function compareSuite(t: Test, make: () => World) {
  const single = make();
  const batched = make();
  const tally: Record<string, number> = {};
  const counts: Record<string, number> = {};
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };

  for (const round of [round1(), round2()]) {
    for (const record of round.records) {
      await single.dispatch(record);
      await batched.dispatch(record);
    }
    for (const m of round.messages) {
      const outcome = await resultHandler(m, single.deps);
      tally[outcome] = (tally[outcome] ?? 0) + 1;
    }
    batched.calls.clear();
    for (const job of jobsOf(round.messages)) add(counts, await resultsHandler(job, batched.deps));
    t.same(counts, tally, 'the same outcomes');
    t.same(await batched.state(round.ids), await single.state(round.ids), 'the same state');
    t.same(byId(batched.alerts), byId(single.alerts), 'the same alerts');
    // Per task, alerts in the same order.
    for (const task of TASKS) {
      t.same(
        batched.alerts.filter((a) => a.payload.task === task).map((a) => a.payload.event),
        single.alerts.filter((a) => a.payload.task === task).map((a) => a.payload.event),
      );
    }
    // Reads: each job reads records and snapshots in one call each; nothing per message.
    t.equal(batched.calls.get('statuses.snapshots') ?? 0, 2, 'one snapshots read per job');
    t.notOk(batched.calls.get('statuses.getStatus'), 'no per-message status read');
    t.notOk(batched.calls.get('statuses.setStatus'), 'no per-message status write');
    t.equal(batched.calls.get('statuses.setStatusesMany') ?? 0, 2, 'one status write per job');

    // Redelivered (at-least-once): nothing changes, no alert id is new.
    const before = await batched.state(round.ids);
    const alerts = byId(batched.alerts);
    for (const job of jobsOf(round.messages)) await resultsHandler(job, batched.deps);
    t.same(await batched.state(round.ids), before, 'a redelivered job changes nothing');
    t.same([...new Set(byId(batched.alerts))], [...new Set(alerts)], 'and sends no new alert');
  }

  t.same(
    single.alerts.map((a) => [a.payload.agent.name, a.payload.task, a.payload.event]),
    [
      ['web-01', 'certs', 'drift_detected'],
      ['web-01', 'motd', 'drift_detected'],
      ['db-01', 'db_backup', 'drift_detected'],
      ['db-01', 'db_backup', 'remediation_failed'],
      ['web-01', 'certs', 'drift_remediated'],
    ],
    'the scenario alerts where it should',
  );
}

t.test('memory stores: batched = one by one', async (t) => {
  await compareSuite(t, memoryWorld);
});

t.test('redis stores: batched = one by one', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  await compareSuite(t, () => redisWorld(client, redis.url, `${redis.prefix}-${n++}`));
});

t.test('quiet results are judged in memory: no per-message store call, labels unread', async (t) => {
  const w = memoryWorld();
  const tasks: [string, RunMode, DriftPolicy][] = [
    ['web_config', 'apply', 'remediate'],
    ['motd', 'check', 'alert_only'],
  ];
  const first = instruction('i-1', 'web-01', 'drift_check', tasks);
  await w.dispatch(first);
  await resultsHandler(
    oneJob([
      taskResult(first, 'web_config', 'satisfied', [['config', 'satisfied', null]]),
      taskResult(first, 'motd', 'drifted', [['motd', 'drifted', null]]),
    ]),
    w.deps,
  );
  const again = instruction('i-2', 'web-01', 'drift_check', tasks);
  await w.dispatch(again);
  w.calls.clear();
  const job = oneJob([
    receipt(again, true, null),
    taskResult(again, 'web_config', 'satisfied', [['config', 'satisfied', null]]),
    taskResult(again, 'motd', 'drifted', [['motd', 'drifted', null]]),
  ]);
  t.same(await resultsHandler(job, w.deps), { accepted: 1, satisfied: 1, drifted: 1 });
  t.same(
    Object.fromEntries([...w.calls].sort()),
    {
      'instructions.getMany': 1,
      'instructions.settleMany': 1,
      'statuses.setStatusesMany': 1,
      'statuses.snapshots': 1,
    },
    'one read of each kind, then the writes (the memory twin batches as Redis does)',
  );
  t.equal(w.alerts.length, 1, 'drift_detected was sent once, in the first job');
  t.match(await w.deps.statuses.getStatus('web-01', 'motd'), { outcome: 'drifted', execution_id: 'i-2.1' });
  t.same((await w.deps.instructions.get('i-2'))?.pending, []);
});

t.test('a failed read fails the job before anything is written', async (t) => {
  const w = memoryWorld();
  const record = instruction('i-1', 'web-01', 'drift_check', [['web_config', 'apply', 'remediate']]);
  await w.dispatch(record);
  const job = oneJob([taskResult(record, 'web_config', 'satisfied', [['config', 'satisfied', null]])]);
  const deps: ResultDeps = {
    ...w.deps,
    statuses: Object.assign(Object.create(w.deps.statuses), {
      snapshots: async () => {
        throw new Error('redis down');
      },
    }),
  };
  await t.rejects(resultsHandler(job, deps), /redis down/);
  t.same((await w.deps.instructions.get('i-1'))?.pending, ['web_config'], 'still pending');
  t.same(await resultsHandler(job, w.deps), { satisfied: 1 }, 'the retry does it');
  t.same((await w.deps.instructions.get('i-1'))?.pending, []);
});

t.test('inside one job, a record whose last task finished reads as done (as before)', async (t) => {
  const w = memoryWorld();
  const record = instruction('i-1', 'web-01', 'drift_check', [['web_config', 'apply', 'remediate']]);
  await w.dispatch(record);
  const result = taskResult(record, 'web_config', 'satisfied', [['config', 'satisfied', null]]);
  t.same(await resultsHandler(oneJob([result, result]), w.deps), { satisfied: 1, unknown_instruction: 1 });
  t.same((await w.deps.instructions.get('i-1'))?.pending, []);
  t.same(
    (await (w.deps.events as MemoryEventStore).query({ limit: 10 })).events.map((e) => e.id),
    ['task_run:i-1.0'],
  );
});

t.test('a failed status write stops that agent before its tasks finish; others complete', async (t) => {
  const w = memoryWorld();
  const a = instruction('i-1', 'web-01', 'drift_check', [['web_config', 'apply', 'remediate']]);
  const b = instruction('i-2', 'web-02', 'drift_check', [['web_config', 'apply', 'remediate']]);
  await w.dispatch(a);
  await w.dispatch(b);
  const job = oneJob([
    taskResult(a, 'web_config', 'satisfied', [['config', 'satisfied', null]]),
    taskResult(b, 'web_config', 'satisfied', [['config', 'satisfied', null]]),
  ]);
  const real = w.deps.statuses;
  const deps: ResultDeps = {
    ...w.deps,
    statuses: Object.assign(Object.create(real), {
      setStatusesMany: async (writes: Parameters<typeof real.setStatusesMany>[0]) => {
        const ok = await real.setStatusesMany(writes.filter((x) => x.agent !== 'web-01'));
        return writes.map((x) =>
          x.agent === 'web-01' ? { status: 'rejected', reason: new Error('OOM') } : ok.shift(),
        );
      },
    }),
  };
  await t.rejects(resultsHandler(job, deps), /OOM/);
  t.same((await w.deps.instructions.get('i-1'))?.pending, ['web_config'], 'web-01: still pending');
  t.equal(await real.getStatus('web-01', 'web_config'), null);
  t.same((await w.deps.instructions.get('i-2'))?.pending, [], 'web-02: done');
  t.same(await resultsHandler(job, w.deps), { satisfied: 2 }, 'the retry finishes web-01');
  t.same((await w.deps.instructions.get('i-1'))?.pending, []);
  t.match(await real.getStatus('web-01', 'web_config'), { outcome: 'satisfied' });
});
