/**
 * Reconciling agents on in-memory fakes: one agent (what is sent, in which mode, recorded before
 * sending), many agents per job, and a reconcile job that runs again after its results came in.
 */
import t from 'tap';
import {
  type AgentEntry,
  type ReconcileAgentDeps,
  reconcileAgentHandler,
} from '../reconciler/handlers/reconcile-agent.js';
import { AGENTS_IN_FLIGHT, reconcileAgentsHandler } from '../reconciler/handlers/reconcile-agents.js';
import type { ReconcileAgentJob } from '../shared/jobs/payloads.js';
import type { Trigger } from '../shared/plan.js';
import type { RunMessage } from '../shared/protocol.js';
import type { DriftPolicy, RunMode } from '../shared/types.js';
import type { CurrentState } from '../store/desired-state/state-store.js';
import { MemoryInstructionStore } from '../store/instructions/memory-instruction-store.js';
import type { AgentRunState } from '../store/runs/run-store.js';
import { compileState, DB, MOTD, resultWorld, T0, WEB } from './helpers/handler-worlds.js';
import { agentEntry, receipt, silentLogger, taskResult } from './helpers/reconciler-fakes.js';

// ---- reconcile one agent -------------------------------------------------------------------------

async function reconcileWorld(opts: { defaultPolicy?: DriftPolicy; undeliverable?: boolean } = {}) {
  const state = await compileState({ 'web.fluke.hcl': WEB, 'motd.fluke.hcl': MOTD, 'db.fluke.hcl': DB });
  const current: { value: CurrentState | null } = { value: { revision: 'c0ffee', state } };
  const agents = new Map<string, AgentEntry>([
    ['web-01', agentEntry('web-01', { role: 'web' })],
    ['cache-01', agentEntry('cache-01', { role: 'cache' })],
  ]);
  const instructions = new MemoryInstructionStore();
  const log: string[] = [];
  const sent: RunMessage[] = [];
  const runStates: [string, string, AgentRunState, string[] | undefined][] = [];
  const forgotten: [string, string[]][] = [];
  const deps: ReconcileAgentDeps = {
    getAgent: async (name) => agents.get(name) ?? null,
    current: async () => current.value,
    defaultPolicy: opts.defaultPolicy ?? 'remediate',
    send: async (entry, message) => {
      // Results may come back before `send` returns: the record must already be there.
      const saved = await instructions.get(message.instruction_id);
      log.push(`send:${entry.name}:${saved ? 'recorded' : 'NOT RECORDED'}`);
      sent.push(message);
      return opts.undeliverable ? 'undeliverable' : 'delivered';
    },
    saveInstruction: async (record) => {
      log.push(`save:${record.instruction_id}`);
      await instructions.save(record);
    },
    scheduleDeadline: async (id) => {
      log.push(`deadline:${id}`);
    },
    runState: async (runId, agent, s, tasks) => {
      log.push(`run:${s}`);
      runStates.push([runId, agent, s, tasks]);
    },
    forgetTasks: async (agent, keep) => {
      forgotten.push([agent, keep]);
    },
    logger: silentLogger,
    now: () => new Date(T0),
  };
  const reconcile = (data: Partial<ReconcileAgentJob> & { agent: string }, id = 'i-job1') =>
    reconcileAgentHandler({ trigger: 'commit', run_id: null, tasks: null, retry: 0, ...data }, id, deps);
  return { reconcile, instructions, log, sent, runStates, forgotten, current, state, deps };
}

const modes = (m: RunMessage | undefined) => m?.tasks.map((t) => [t.task, t.mode, t.execution_id]);

t.test('reconcileAgentHandler', async (t) => {
  t.test('an agent that is not connected', async (t) => {
    const w = await reconcileWorld();
    t.same(await w.reconcile({ agent: 'ghost' }), { kind: 'not_connected' });
    t.same(w.runStates, [], 'no run, no progress marks');
    t.same(await w.reconcile({ agent: 'ghost', run_id: 'run-1' }), { kind: 'not_connected' });
    t.same(w.runStates, [['run-1', 'ghost', 'not_connected', undefined]]);
    t.same(w.sent, []);
  });

  t.test('no desired state yet', async (t) => {
    const w = await reconcileWorld();
    w.current.value = null;
    t.same(await w.reconcile({ agent: 'web-01', run_id: 'run-1' }), { kind: 'no_state' });
    t.same(w.runStates, [['run-1', 'web-01', 'no_tasks', undefined]]);
    t.same(w.sent, []);
    t.equal(await w.instructions.get('i-job1'), null);
  });

  t.test('no task matches the agent (or the task filter)', async (t) => {
    const w = await reconcileWorld();
    t.same(await w.reconcile({ agent: 'cache-01', run_id: 'run-1' }), { kind: 'no_tasks' });
    t.same(await w.reconcile({ agent: 'web-01', run_id: 'run-1', tasks: ['db_backup'] }), {
      kind: 'no_tasks',
    });
    t.same(
      w.runStates.map((r) => r[2]),
      ['no_tasks', 'no_tasks'],
    );
    t.same(w.sent, []);
    t.same(
      w.log.filter((l) => l.startsWith('save') || l.startsWith('deadline')),
      [],
    );
    t.same(
      w.forgotten,
      [['cache-01', []]],
      'a full reconcile forgets what the agent no longer has; a filtered one does not',
    );
  });

  t.test('a full reconcile keeps exactly the matched tasks', async (t) => {
    const w = await reconcileWorld();
    await w.reconcile({ agent: 'web-01' });
    await w.reconcile({ agent: 'web-01', tasks: ['motd'] }, 'i-job2');
    t.same(w.forgotten, [['web-01', ['motd', 'web_config']]]);
  });

  t.test('dispatch: record saved before sending, then a deadline', async (t) => {
    const w = await reconcileWorld();
    const outcome = await w.reconcile({ agent: 'web-01', run_id: 'run-1' }, 'i-42');
    t.same(outcome, { kind: 'dispatched', instruction_id: 'i-42', tasks: ['motd', 'web_config'] });
    t.same(w.log, ['save:i-42', 'run:dispatched', 'send:web-01:recorded', 'deadline:i-42']);
    t.same(w.runStates, [['run-1', 'web-01', 'dispatched', ['motd', 'web_config']]]);
    const found = await w.instructions.get('i-42');
    t.same(found?.pending, ['motd', 'web_config']);
    t.same(found?.record, {
      instruction_id: 'i-42',
      agent: 'web-01',
      session_id: 's-web-01',
      trigger: 'commit',
      run_id: 'run-1',
      revision: 'c0ffee',
      created_at: new Date(T0).toISOString(),
      retry: 0,
      tasks: [
        { task: 'motd', execution_id: 'i-42.0', mode: 'check', policy: 'alert_only' },
        { task: 'web_config', execution_id: 'i-42.1', mode: 'apply', policy: 'remediate' },
      ],
    });
    const message = w.sent[0];
    t.match(message, { type: 'run', instruction_id: 'i-42', revision: 'c0ffee', trigger: 'commit' });
    t.same(modes(message), [
      ['motd', 'check', 'i-42.0'],
      ['web_config', 'apply', 'i-42.1'],
    ]);
    t.same(
      message?.tasks.map((task) => task.steps),
      w.state.tasks.filter((task) => task.name !== 'db_backup').map((task) => task.steps),
      'the compiled steps travel as they are',
    );
  });

  t.test('modes follow the policy and the trigger', async (t) => {
    const cases: [DriftPolicy, Trigger, [string, RunMode][]][] = [
      [
        'remediate',
        'drift_check',
        [
          ['motd', 'check'],
          ['web_config', 'apply'],
        ],
      ],
      [
        'alert_only',
        'drift_check',
        [
          ['motd', 'check'],
          ['web_config', 'check'],
        ],
      ],
      [
        'alert_only',
        'connect',
        [
          ['motd', 'check'],
          ['web_config', 'check'],
        ],
      ],
      [
        'alert_only',
        'manual',
        [
          ['motd', 'apply'],
          ['web_config', 'apply'],
        ],
      ],
      [
        'remediate_and_alert',
        'commit',
        [
          ['motd', 'check'],
          ['web_config', 'apply'],
        ],
      ],
    ];
    for (const [policy, trigger, want] of cases) {
      const w = await reconcileWorld({ defaultPolicy: policy });
      await w.reconcile({ agent: 'web-01', trigger }, 'i-m');
      t.same(
        w.sent[0]?.tasks.map((task) => [task.task, task.mode]),
        want,
        `default ${policy}, trigger ${trigger}`,
      );
      const record = (await w.instructions.get('i-m'))?.record;
      t.same(
        record?.tasks.map((task) => [task.task, task.mode]),
        want,
        'the record plans the same modes',
      );
    }
  });

  t.test('a task filter sends only those tasks; execution ids count within the instruction', async (t) => {
    const w = await reconcileWorld();
    const outcome = await w.reconcile({
      agent: 'web-01',
      trigger: 'manual',
      tasks: ['web_config'],
      retry: 3,
    });
    t.same(outcome, { kind: 'dispatched', instruction_id: 'i-job1', tasks: ['web_config'] });
    t.same(modes(w.sent[0]), [['web_config', 'apply', 'i-job1.0']]);
    t.equal((await w.instructions.get('i-job1'))?.record.retry, 3);
  });

  t.test('an undeliverable send keeps the record and the deadline', async (t) => {
    const w = await reconcileWorld({ undeliverable: true });
    t.same(await w.reconcile({ agent: 'web-01', run_id: 'run-1' }, 'i-u'), {
      kind: 'undeliverable',
      instruction_id: 'i-u',
    });
    t.same(w.log, [
      'save:i-u',
      'run:dispatched',
      'send:web-01:recorded',
      'deadline:i-u',
      'run:undeliverable',
    ]);
    t.same((await w.instructions.get('i-u'))?.pending, ['motd', 'web_config']);
  });
});

// ---- many agents per job -------------------------------------------------------------------------

t.test('reconcileAgentsHandler: one job, many agents, one deadlines job', async (t) => {
  const single = await reconcileWorld();
  for (const [i, agent] of ['web-01', 'cache-01', 'ghost'].entries()) {
    await single.reconcile({ agent, run_id: 'run-1' }, `i-job1-${i}`);
  }
  const w = await reconcileWorld();
  let registryReads = 0;
  let stateReads = 0;
  const deadlines: string[][] = [];
  const outcome = await reconcileAgentsHandler(
    { agents: ['web-01', 'cache-01', 'ghost'], trigger: 'commit', run_id: 'run-1', tasks: null },
    (_agent, i) => `i-job1-${i}`,
    {
      ...w.deps,
      getAgents: async (names) => {
        registryReads++;
        return Promise.all(names.map((n) => w.deps.getAgent(n)));
      },
      current: async () => {
        stateReads++;
        return w.current.value;
      },
      scheduleDeadlines: async (ids) => {
        deadlines.push(ids);
      },
    },
  );
  t.equal(registryReads, 1, 'the registry entries read once for the job');
  t.equal(stateReads, 1, 'the desired state read once for the job');
  t.same(
    [...w.sent].sort((a, b) => a.instruction_id.localeCompare(b.instruction_id)),
    [...single.sent].sort((a, b) => a.instruction_id.localeCompare(b.instruction_id)),
    'the same instructions as one job per agent',
  );
  t.same(
    [...w.runStates].sort((a, b) => `${a[1]}${a[2]}`.localeCompare(`${b[1]}${b[2]}`)),
    [...single.runStates].sort((a, b) => `${a[1]}${a[2]}`.localeCompare(`${b[1]}${b[2]}`)),
  );
  const dispatched = single.sent.map((m) => m.instruction_id).sort();
  t.same(
    deadlines.map((d) => [...d].sort()),
    [dispatched],
    'one deadlines job for every instruction sent',
  );
  t.same(outcome, { dispatched: dispatched.length, no_tasks: 1, not_connected: 1 });
  t.equal(dispatched.length, 1);
  for (const id of dispatched) t.ok(await w.instructions.get(id), `${id} recorded`);

  // More agents than one slice: a slice at a time, each agent with the id of its place in the job.
  const many = await reconcileWorld();
  const names = Array.from(
    { length: AGENTS_IN_FLIGHT * 2 + 20 },
    (_, i) => `web-${String(i).padStart(3, '0')}`,
  );
  let inFlight = 0;
  let most = 0;
  const manyDeadlines: string[][] = [];
  const manyOutcome = await reconcileAgentsHandler(
    { agents: names, trigger: 'drift_check', run_id: null, tasks: null },
    (_agent, i) => `i-many-${i}`,
    {
      ...many.deps,
      getAgents: (list) => Promise.all(list.map((n) => agentEntry(n, { role: 'web' }))),
      send: async (entry, message) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return many.deps.send(entry, message);
      },
      scheduleDeadlines: async (ids) => {
        manyDeadlines.push(ids);
      },
    },
  );
  t.same(manyOutcome, { dispatched: names.length });
  t.ok(most > 1 && most <= AGENTS_IN_FLIGHT, `at most a slice in flight (${most})`);
  const sentTo = new Map(many.sent.map((m) => [m.instruction_id, m]));
  t.equal(sentTo.size, names.length, 'every agent got an instruction');
  for (let i = 0; i < names.length; i += 37) {
    t.equal(
      (await many.instructions.get(`i-many-${i}`))?.record.agent,
      names[i],
      `i-many-${i} is ${names[i]}'s`,
    );
  }
  t.equal(manyDeadlines.length, 1, 'still one deadlines job');
  t.equal(manyDeadlines[0]?.length, names.length);

  // A failing agent fails the job, after the others went out with their deadlines.
  const f = await reconcileWorld();
  const failDeadlines: string[][] = [];
  await t.rejects(
    reconcileAgentsHandler(
      { agents: ['web-01', 'web-02'], trigger: 'commit', run_id: null, tasks: null },
      (_agent, i) => `i-job2-${i}`,
      {
        ...f.deps,
        getAgents: (names) =>
          Promise.all(
            names.map((n) => (n === 'web-02' ? agentEntry('web-02', { role: 'web' }) : f.deps.getAgent(n))),
          ),
        send: async (entry, message) => {
          if (entry.name === 'web-02') throw new Error('publish failed');
          return f.deps.send(entry, message);
        },
        scheduleDeadlines: async (ids) => {
          failDeadlines.push(ids);
        },
      },
    ),
    /publish failed/,
  );
  t.same(failDeadlines, [['i-job2-0']]);
});

t.test('a reconcile job that runs again after its results came in does not undo them', async (t) => {
  // A worker killed after `send` leaves the job stalled; BullMQ runs it again with the same
  // instruction id. The agent refuses the id as a duplicate, so what already came back must stay.
  const w = resultWorld();
  const state = await compileState({ 'web.fluke.hcl': WEB });
  const runs = w.runs;
  await runs.create({ id: 'run-1', target: 'agent', name: 'web-01', created_at: new Date(T0).toISOString() });
  await runs.setAgents('run-1', ['web-01']);
  const deps: ReconcileAgentDeps = {
    getAgent: async (name) => agentEntry(name, { role: 'web' }),
    current: async () => ({ revision: 'c0ffee', state }),
    defaultPolicy: 'remediate',
    send: async () => 'delivered',
    saveInstruction: (record) => w.instructions.save(record),
    scheduleDeadline: async () => {},
    runState: (runId, agent, s, tasks, executionIds) =>
      runs.setAgentState(runId, agent, s, tasks, executionIds),
    forgetTasks: (agent, keep) => w.statuses.forgetTasks(agent, keep),
    logger: silentLogger,
    now: () => new Date(T0),
  };
  const data: ReconcileAgentJob = {
    agent: 'web-01',
    trigger: 'manual',
    run_id: 'run-1',
    tasks: null,
    retry: 0,
  };
  await reconcileAgentHandler(data, 'i-1', deps);
  const record = (await w.instructions.get('i-1'))?.record;
  if (!record) throw new Error('not recorded');
  await w.handle(taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]]));
  await reconcileAgentHandler(data, 'i-1', deps);
  t.equal(await w.handle(receipt(record, false, 'duplicate instruction id i-1')), 'duplicate');
  t.same((await w.instructions.get('i-1'))?.pending, [], 'nothing pending, so no timeout follows');
  const run = await runs.get('run-1');
  t.same(run?.results, [{ agent: 'web-01', task: 'web_config', outcome: 'applied', execution_id: 'i-1.0' }]);
  t.equal(run?.done, true);
});
