/**
 * The fan-out handler on in-memory fakes: which agents and tasks a commit, a manual run or a
 * task target reaches.
 */
import t from 'tap';
import { type AgentJob, type FanoutDeps, fanoutHandler } from '../reconciler/handlers/fanout.js';
import type { AgentEntry } from '../reconciler/handlers/reconcile-agent.js';
import type { FanoutJob } from '../shared/jobs/payloads.js';
import { compileState, DB, WEB } from './helpers/handler-worlds.js';
import { agentEntry } from './helpers/reconciler-fakes.js';

// ---- fan-out -------------------------------------------------------------------------------------

const AGENTS: AgentEntry[] = [
  agentEntry('db-01', { role: 'db' }),
  agentEntry('web-01', { role: 'web' }),
  agentEntry('web-02', { role: 'web', env: 'prod' }),
];

async function fanoutWorld() {
  const state = await compileState({ 'web.fluke.hcl': WEB, 'db.fluke.hcl': DB });
  const log: string[] = [];
  const enqueued: AgentJob[] = [];
  const runAgents: [string, string[]][] = [];
  const deps: FanoutDeps = {
    listAgents: async () => AGENTS,
    // The index may hold a name whose entry just expired: the per-agent job finds it gone.
    agentNames: async () => [...AGENTS.map((a) => a.name), 'gone-01'],
    current: async () => ({ revision: 'c0ffee', state }),
    enqueueAgents: async (jobs) => {
      log.push('enqueue');
      enqueued.push(...jobs);
    },
    setRunAgents: async (runId, agents) => {
      log.push('run');
      runAgents.push([runId, agents]);
    },
  };
  const fanout = (data: Partial<FanoutJob>) =>
    fanoutHandler({ trigger: 'manual', run_id: null, task: null, agent: null, ...data }, deps);
  return { fanout, enqueued, runAgents, log };
}

t.test('fanout', async (t) => {
  t.test('all: every agent in the index, every task', async (t) => {
    const w = await fanoutWorld();
    t.same(await w.fanout({ trigger: 'commit' }), { agents: 4 });
    t.same(w.enqueued, [
      ...['db-01', 'web-01', 'web-02', 'gone-01'].map((agent) => ({
        data: { agent, trigger: 'commit', run_id: null, tasks: null, retry: 0 },
        delayMs: 0,
      })),
    ]);
    t.same(w.runAgents, [], 'no run to update');
  });

  t.test('agent: that agent only, with or without a task', async (t) => {
    const w = await fanoutWorld();
    t.same(await w.fanout({ agent: 'web-02' }), { agents: 1 });
    t.same(await w.fanout({ agent: 'web-01', task: 'web_config' }), { agents: 1 });
    t.same(
      w.enqueued.map((j) => j.data),
      [
        { agent: 'web-02', trigger: 'manual', run_id: null, tasks: null, retry: 0 },
        { agent: 'web-01', trigger: 'manual', run_id: null, tasks: ['web_config'], retry: 0 },
      ],
    );
  });

  t.test('task: only the agents its selector matches, with only that task', async (t) => {
    const w = await fanoutWorld();
    t.same(await w.fanout({ task: 'web_config' }), { agents: 2 });
    t.same(await w.fanout({ task: 'db_backup' }), { agents: 1 });
    t.same(
      w.enqueued.map((j) => [j.data.agent, j.data.tasks]),
      [
        ['web-01', ['web_config']],
        ['web-02', ['web_config']],
        ['db-01', ['db_backup']],
      ],
    );
  });

  t.test('an unknown task targets nobody (and a run says so)', async (t) => {
    const w = await fanoutWorld();
    t.same(await w.fanout({ task: 'nope', run_id: 'run-1' }), { agents: 0 });
    t.same(w.runAgents, [['run-1', []]]);
    t.same(w.enqueued, []);
  });

  t.test('a run id is passed through, and the run learns its agents before any job runs', async (t) => {
    const w = await fanoutWorld();
    await w.fanout({ task: 'web_config', run_id: 'run-2' });
    t.same(w.runAgents, [['run-2', ['web-01', 'web-02']]]);
    t.same(w.log, ['run', 'enqueue']);
    t.ok(w.enqueued.every((j) => j.data.run_id === 'run-2' && j.data.trigger === 'manual'));
  });
});
