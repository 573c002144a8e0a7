/**
 * The reconciler's job handlers on in-memory fakes: poll, fan-out, drift tick, reconcile-agent,
 * deadline and results. No Redis, no BullMQ; a real ManifestCompiler on literal manifests.
 * The Redis adapters the real wiring uses are held to the same contracts (test/store-*.test.ts).
 */
import t from 'tap';
import { type GitSnapshot, MemoryGitSource } from '../reconciler/git-source.js';
import { checkAlertWebhook } from '../reconciler/handlers/alert-policy.js';
import { type DeadlineDeps, deadlineHandler, MISSES_ALLOWED } from '../reconciler/handlers/deadline.js';
import {
  type AgentJob,
  driftTickHandler,
  type FanoutDeps,
  fanoutHandler,
} from '../reconciler/handlers/fanout.js';
import { type PollDeps, pollHandler } from '../reconciler/handlers/poll.js';
import {
  type AgentEntry,
  type ReconcileAgentDeps,
  reconcileAgentHandler,
} from '../reconciler/handlers/reconcile-agent.js';
import {
  AGENTS_IN_FLIGHT,
  deadlinesHandler,
  reconcileAgentsHandler,
} from '../reconciler/handlers/reconcile-agents.js';
import {
  BUSY_RETRIES,
  BUSY_RETRY_MS,
  type ResultDeps,
  resultHandler,
  resultsHandler,
  timeOutTasks,
} from '../reconciler/handlers/result.js';
import type { DeadlineJob, FanoutJob, ReconcileAgentJob, ResultJob, Trigger } from '../reconciler/jobs.js';
import type { Alert } from '../shared/alerts.js';
import type { FlukeEvent } from '../shared/events.js';
import { ManifestCompiler, type ManifestFile } from '../shared/manifest/compile.js';
import { driftCheckOffset, type PlannedTask } from '../shared/plan.js';
import type { RunMessage } from '../shared/protocol.js';
import type { DesiredState, DriftPolicy, Labels, RunMode } from '../shared/types.js';
import { MemoryStateStore } from '../store/desired-state/memory-state-store.js';
import type { CurrentState } from '../store/desired-state/state-store.js';
import { MemoryEventStore } from '../store/events/memory-event-store.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';
import { MemoryInstructionStore } from '../store/instructions/memory-instruction-store.js';
import { MemoryRunStore } from '../store/runs/memory-run-store.js';
import type { AgentRunState } from '../store/runs/run-store.js';
import { MemoryStatusStore } from '../store/statuses/memory-status-store.js';
import {
  agentEntry,
  checkResult,
  dispatchRecord,
  receipt,
  resultJob,
  silentLogger,
  taskResult,
} from './helpers/reconciler-fakes.js';

const T0 = Date.parse('2025-03-13T14:22:01.000Z');
const HOUR = 3_600_000;

// ---- manifests -----------------------------------------------------------------------------------

const WEB = `task "web_config" {
  selector {
    match_labels = { role = "web" }
  }
  shell "config" {
    check   = "test -f /etc/app.conf"
    command = "touch /etc/app.conf"
  }
}
`;
/** WEB with an unknown attribute on line 5. */
const WEB_BAD = WEB.replace('  shell "config" {', '  owner = "me"\n  shell "config" {');
/** WEB with a different command: a fix of WEB_BAD that is not WEB again. */
const WEB_FIXED = WEB.replace('touch /etc/app.conf', 'install -m 644 /dev/null /etc/app.conf');
const MOTD = `task "motd" {
  drift { policy = "alert_only" }
  selector {
    match_labels = { role = "web" }
  }
  shell "motd" {
    check   = "test -f /etc/motd"
    command = "touch /etc/motd"
  }
}
`;
const DB = `task "db_backup" {
  drift { policy = "remediate_and_alert" }
  selector {
    match_labels = { role = "db" }
  }
  shell "timer" {
    check   = "systemctl is-active backup.timer"
    command = "systemctl start backup.timer"
  }
}
`;

async function compileState(files: Record<string, string>): Promise<DesiredState> {
  const result = await new ManifestCompiler().compile(
    Object.entries(files).map(([path, content]) => ({ path, content })),
  );
  if (result.errors.length > 0) throw new Error(`fixture does not compile: ${JSON.stringify(result.errors)}`);
  return result.state;
}

// ---- poll ----------------------------------------------------------------------------------------

function pollWorld(opts: { alertWebhook?: string | null; lockHeld?: boolean } = {}) {
  const git = new MemoryGitSource();
  const compiler = new ManifestCompiler();
  const state = new MemoryStateStore();
  const fanouts: string[] = [];
  let compiles = 0;
  let pinned: GitSnapshot | null = null;
  let clock = T0;
  const webhook = opts.alertWebhook === undefined ? 'https://hooks.example/fluke' : opts.alertWebhook;
  const deps: PollDeps = {
    fetch: async () => pinned ?? git.fetch(),
    compile: async (files: ManifestFile[]) => {
      compiles += 1;
      return checkAlertWebhook(await compiler.compile(files), {
        policy: 'remediate',
        alert_webhook: webhook,
      });
    },
    state,
    fanoutAll: async (revision) => {
      fanouts.push(revision);
    },
    singleFlight: async <T>(fn: () => Promise<T>): Promise<T | null> => (opts.lockHeld ? null : fn()),
    logger: silentLogger,
    now: () => {
      clock += 1000;
      return new Date(clock);
    },
  };
  return {
    git,
    state,
    fanouts,
    compiles: () => compiles,
    poll: () => pollHandler(deps),
    /** The branch tip is set back to this exact snapshot (a reset / force-push to an old commit). */
    pin: (snapshot: GitSnapshot | null) => {
      pinned = snapshot;
    },
  };
}

t.test('poll', async (t) => {
  t.test('the first good commit: state saved, one fan-out', async (t) => {
    const w = pollWorld();
    const rev = w.git.commit({ 'web.fluke.hcl': WEB, 'README.md': 'not a manifest' });
    t.same(await w.poll(), { kind: 'updated', revision: rev, tasks: 1 });
    t.same(w.fanouts, [rev]);
    const current = await w.state.current();
    t.equal(current?.revision, rev);
    t.same(
      current?.state.tasks.map((task) => task.name),
      ['web_config'],
    );
    const status = await w.state.status();
    t.equal(status.revision, rev);
    t.equal(status.last_seen_revision, rev);
    t.equal(status.last_error, null);
    t.equal(status.task_count, 1);
  });

  t.test('the same revision again: unchanged, not recompiled, no fan-out', async (t) => {
    const w = pollWorld();
    const rev = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    const before = await w.state.status();
    t.same(await w.poll(), { kind: 'unchanged', revision: rev });
    t.same(await w.poll(), { kind: 'unchanged', revision: rev });
    t.equal(w.compiles(), 1);
    t.same(w.fanouts, [rev]);
    const after = await w.state.status();
    t.equal(after.revision_at, before.revision_at, 'the state did not change');
    t.not(after.last_poll_at, before.last_poll_at, 'but the poll is recorded');
  });

  t.test('a bad commit is rejected; the last good state stays, the error says file:line', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.same(w.fanouts, [good], 'no fan-out for a bad commit');
    t.equal((await w.state.current())?.revision, good);
    const status = await w.state.status();
    t.equal(status.revision, good);
    t.equal(status.last_seen_revision, bad);
    t.equal(status.last_error?.revision, bad);
    t.match(status.last_error?.message, /web\.fluke\.hcl:5: task "web_config": unknown attribute "owner"/);
    t.match(status.last_error?.diagnostics, [{ file: 'web.fluke.hcl', line: 5, message: /owner/ }]);
  });

  t.test('the same bad commit again is not recompiled', async (t) => {
    const w = pollWorld();
    w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    await w.poll();
    const error = (await w.state.status()).last_error;
    t.equal(w.compiles(), 2);
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.equal(w.compiles(), 2, 'compiled once, however often it is seen');
    t.same((await w.state.status()).last_error, error, 'the error stays as recorded');
  });

  t.test('a fix after a bad commit: updated, error cleared, fanned out', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    await w.poll();
    const fixed = w.git.commit({ 'web.fluke.hcl': WEB_FIXED });
    t.same(await w.poll(), { kind: 'updated', revision: fixed, tasks: 1 });
    t.same(w.fanouts, [good, fixed]);
    const status = await w.state.status();
    t.equal(status.revision, fixed);
    t.equal(status.last_error, null);
    t.match((await w.state.current())?.state.tasks[0]?.steps[0], { command: /install/ });
  });

  t.test('going back to the good revision after a bad commit clears the error', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    const goodSnapshot = await w.git.fetch();
    await w.poll();
    w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    await w.poll();
    t.not((await w.state.status()).last_error, null);
    w.pin(goodSnapshot);
    t.same(await w.poll(), { kind: 'unchanged', revision: good });
    const status = await w.state.status();
    t.equal(status.last_error, null);
    t.equal(status.last_seen_revision, good);
    t.equal(w.compiles(), 2, 'the good revision is not compiled again');
    t.same(w.fanouts, [good], 'nothing changed for the agents');
  });

  t.test('a failed fetch is recorded and keeps the state; the next good poll clears it', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    w.git.failNext();
    const outcome = await w.poll();
    t.match(outcome, { kind: 'fetch_failed', error: /simulated outage/ });
    const status = await w.state.status();
    t.equal(status.revision, good);
    t.equal((await w.state.current())?.revision, good);
    t.equal(status.last_error?.revision, null);
    t.match(status.last_error?.message, /^git fetch failed: .*simulated outage/);
    t.same(await w.poll(), { kind: 'unchanged', revision: good });
    t.equal((await w.state.status()).last_error, null);
    t.same(w.fanouts, [good]);
  });

  t.test('a poll that finds the lock held does nothing', async (t) => {
    const w = pollWorld({ lockHeld: true });
    w.git.commit({ 'web.fluke.hcl': WEB });
    t.same(await w.poll(), { kind: 'skipped' });
    t.equal(w.git.fetchCount, 0);
    t.equal(w.compiles(), 0);
    t.same(await w.state.status(), {
      revision: null,
      revision_at: null,
      last_poll_at: null,
      last_seen_revision: null,
      last_error: null,
      task_count: 0,
    });
  });

  t.test('an alert_only task without alert_webhook is a bad commit, reported at the task', async (t) => {
    const w = pollWorld({ alertWebhook: null });
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    t.same(await w.poll(), { kind: 'updated', revision: good, tasks: 1 }, 'remediate needs no webhook');
    const bad = w.git.commit({ 'web.fluke.hcl': WEB, 'ops/motd.fluke.hcl': MOTD });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    const status = await w.state.status();
    t.equal(status.revision, good);
    t.match(status.last_error?.diagnostics, [
      {
        file: 'ops/motd.fluke.hcl',
        line: 1,
        message: /task "motd" .*"alert_only".*alert_webhook is not set/,
      },
    ]);
    t.match(status.last_error?.message, /ops\/motd\.fluke\.hcl:1:/);
  });
});

t.test('checkAlertWebhook', async (t) => {
  const compiler = new ManifestCompiler();
  const both = await compiler.compile([
    { path: 'web.fluke.hcl', content: WEB },
    { path: 'db.fluke.hcl', content: DB },
  ]);
  t.same(both.errors, []);
  t.equal(checkAlertWebhook(both, { policy: 'remediate', alert_webhook: 'https://h.example' }), both);
  const without = checkAlertWebhook(both, { policy: 'remediate', alert_webhook: null });
  t.match(without.errors, [{ file: 'db.fluke.hcl', line: 1, message: /"db_backup".*"remediate_and_alert"/ }]);
  t.equal(without.errors.length, 1, 'the task on the remediate default needs no webhook');
  const alertingDefault = checkAlertWebhook(both, { policy: 'alert_only', alert_webhook: null });
  t.same(
    alertingDefault.errors.map((e) => `${e.file}:${e.line}`),
    ['db.fluke.hcl:1', 'web.fluke.hcl:1'],
    'a server default that alerts makes every task on it need the webhook',
  );
  const broken = await compiler.compile([{ path: 'web.fluke.hcl', content: WEB_BAD }]);
  t.equal(
    checkAlertWebhook(broken, { policy: 'alert_only', alert_webhook: null }),
    broken,
    'compile errors first',
  );
});

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

// ---- drift tick ----------------------------------------------------------------------------------

const INTERVAL = 60_000;

function tickWorld(names: string[]) {
  const enqueued: AgentJob[] = [];
  let listed = 0;
  const deps = {
    agentNames: async () => {
      listed += 1;
      return names;
    },
    enqueueAgents: async (jobs: AgentJob[]) => {
      enqueued.push(...jobs);
    },
    pollIntervalMs: INTERVAL,
  };
  return {
    enqueued,
    listed: () => listed,
    tick: (start: number, end: number, now: number) => driftTickHandler(start, end, now, deps),
  };
}

/** Whether the agent's slot (its offset within every interval) falls in [start, end). */
function slotIn(name: string, start: number, end: number): boolean {
  const offset = driftCheckOffset(name, INTERVAL);
  for (let k = Math.floor(start / INTERVAL) - 1; k * INTERVAL < end; k++) {
    const slot = k * INTERVAL + offset;
    if (slot >= start && slot < end) return true;
  }
  return false;
}

const manyNames = (n: number) => Array.from({ length: n }, (_, i) => `host-${i.toString(36)}.dc${i % 7}`);

/** A small deterministic PRNG so the property cases are the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

t.test('driftTickHandler', async (t) => {
  t.test('agents whose slot falls in [start, end) are delayed to their slot', async (t) => {
    const names = manyNames(300);
    const w = tickWorld(names);
    const start = 1_741_875_721_234;
    const end = start + 5000;
    const now = start - 250;
    const result = await w.tick(start, end, now);
    const expected = names.filter((n) => slotIn(n, start, end));
    t.ok(expected.length > 5, `some agents fall in the window (${expected.length})`);
    t.same(
      w.enqueued.map((j) => j.data.agent),
      expected,
    );
    t.same(result, { agents: expected.length });
    for (const job of w.enqueued) {
      const slot = now + job.delayMs;
      t.equal(((slot % INTERVAL) + INTERVAL) % INTERVAL, driftCheckOffset(job.data.agent, INTERVAL));
      t.ok(slot >= start && slot < end, `${job.data.agent} at its slot`);
      t.same(job.data, {
        agent: job.data.agent,
        trigger: 'drift_check',
        run_id: null,
        tasks: null,
        retry: 0,
      });
    }
  });

  t.test('a late tick: slots already past run at once', async (t) => {
    const names = manyNames(300);
    const w = tickWorld(names);
    const start = 1_741_875_720_000;
    const now = start + 3000;
    await w.tick(start, start + 6000, now);
    for (const job of w.enqueued) {
      const slot =
        start + ((driftCheckOffset(job.data.agent, INTERVAL) - (start % INTERVAL) + INTERVAL) % INTERVAL);
      t.equal(job.delayMs, Math.max(0, slot - now), job.data.agent);
    }
    t.ok(
      w.enqueued.some((j) => j.delayMs === 0) && w.enqueued.some((j) => j.delayMs > 0),
      'both past and future slots in the window',
    );
  });

  t.test('adjacent windows check every agent exactly once per interval', async (t) => {
    const names = manyNames(2000);
    const random = prng(42);
    for (let round = 0; round < 20; round++) {
      const w = tickWorld(names);
      const start = 1_741_875_000_000 + Math.floor(random() * 10 * INTERVAL);
      const cut = start + Math.floor(random() * INTERVAL);
      await w.tick(start, cut, start);
      await w.tick(cut, start + INTERVAL, cut);
      const seen = new Map<string, number>();
      for (const j of w.enqueued) seen.set(j.data.agent, (seen.get(j.data.agent) ?? 0) + 1);
      const wrong = names.filter((n) => seen.get(n) !== 1);
      t.same(wrong, [], `round ${round}: [${start}, ${cut}) + [${cut}, +interval)`);
    }
    // Twelve ticks of a twelfth each, as the schedule runs them.
    const w = tickWorld(names);
    const start = 1_741_875_700_000;
    const step = INTERVAL / 12;
    for (let i = 0; i < 12; i++) await w.tick(start + i * step, start + (i + 1) * step, start + i * step);
    t.equal(w.enqueued.length, names.length);
    t.equal(new Set(w.enqueued.map((j) => j.data.agent)).size, names.length);
  });

  t.test('a window longer than the interval is capped to one interval', async (t) => {
    const names = manyNames(500);
    const w = tickWorld(names);
    const start = 1_741_875_720_000;
    await w.tick(start, start + 5 * INTERVAL, start);
    t.equal(w.enqueued.length, names.length, 'every agent once, not once per interval');
    t.ok(w.enqueued.every((j) => j.delayMs >= 0 && j.delayMs < INTERVAL));
  });

  t.test('an empty or inverted window enqueues nothing', async (t) => {
    const w = tickWorld(manyNames(50));
    t.same(await w.tick(1000, 1000, 1000), { agents: 0 });
    t.same(await w.tick(2000, 1000, 1000), { agents: 0 });
    t.same(w.enqueued, []);
    t.equal(w.listed(), 0, 'the agent index is not even read');
  });
});

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

// ---- deadline ------------------------------------------------------------------------------------

function instruction(
  id: string,
  opts: {
    agent?: string;
    trigger?: Trigger;
    run_id?: string | null;
    retry?: number;
    tasks?: [task: string, mode: RunMode, policy: DriftPolicy][];
  } = {},
): InstructionRecord {
  const tasks: PlannedTask[] = (opts.tasks ?? [['web_config', 'apply', 'remediate']]).map(
    ([task, mode, policy], i) => ({ task, execution_id: `${id}.${i}`, mode, policy }),
  );
  const agent = opts.agent ?? 'web-01';
  return {
    instruction_id: id,
    agent,
    session_id: `s-${agent}`,
    trigger: opts.trigger ?? 'commit',
    run_id: opts.run_id ?? null,
    revision: 'c0ffee',
    created_at: new Date(T0).toISOString(),
    retry: opts.retry ?? 0,
    tasks,
  };
}

function deadlineWorld(opts: { maxWaitMs?: number } = {}) {
  const instructions = new MemoryInstructionStore();
  let running = true;
  let clock = T0;
  const rescheduled: [DeadlineJob, number][] = [];
  const timedOut: [string, string[], number][] = [];
  const deps: DeadlineDeps = {
    getInstruction: (id) => instructions.get(id),
    isRunning: async () => running,
    timeOut: async (record, tasks, waited) => {
      timedOut.push([record.instruction_id, tasks, waited]);
    },
    reschedule: async (data, delay) => {
      rescheduled.push([data, delay]);
    },
    checkEveryMs: 5000,
    maxWaitMs: opts.maxWaitMs ?? HOUR,
    now: () => clock,
  };
  return {
    instructions,
    rescheduled,
    timedOut,
    setRunning: (r: boolean) => {
      running = r;
    },
    advance: (ms: number) => {
      clock += ms;
    },
    check: (data: DeadlineJob) => deadlineHandler(data, deps),
  };
}

t.test('deadlineHandler', async (t) => {
  t.test('finished: the record is gone or has nothing pending', async (t) => {
    const w = deadlineWorld();
    t.equal(await w.check({ instruction_id: 'i-none', misses: 0 }), 'finished');
    const record = instruction('i-1');
    await w.instructions.save(record);
    await w.instructions.finishTask('i-1', 'web_config', 'applied');
    t.equal(await w.check({ instruction_id: 'i-1', misses: 2 }), 'finished');
    t.same(w.rescheduled, []);
    t.same(w.timedOut, []);
  });

  t.test('a running instruction gets more time, and its misses start over', async (t) => {
    const w = deadlineWorld();
    await w.instructions.save(instruction('i-1'));
    w.advance(5000);
    t.equal(await w.check({ instruction_id: 'i-1', misses: 2 }), 'waiting');
    t.same(w.rescheduled, [[{ instruction_id: 'i-1', misses: 0 }, 5000]]);
  });

  t.test('not running: misses count up and time out at MISSES_ALLOWED', async (t) => {
    const w = deadlineWorld();
    await w.instructions.save(
      instruction('i-1', {
        tasks: [
          ['a', 'apply', 'remediate'],
          ['b', 'check', 'alert_only'],
        ],
      }),
    );
    await w.instructions.finishTask('i-1', 'a', 'applied');
    w.setRunning(false);
    let data: DeadlineJob = { instruction_id: 'i-1', misses: 0 };
    let checks = 0;
    for (;;) {
      w.advance(5000);
      checks += 1;
      const outcome = await w.check(data);
      if (outcome !== 'waiting') {
        t.equal(outcome, 'timed_out');
        break;
      }
      const next = w.rescheduled.at(-1);
      if (!next) throw new Error('waiting without a reschedule');
      t.equal(next[0].misses, checks, 'one more miss');
      data = next[0];
    }
    t.equal(checks, MISSES_ALLOWED);
    t.same(w.timedOut, [['i-1', ['b'], MISSES_ALLOWED * 5000]], 'only the pending task times out');
  });

  t.test('one check that finds it running resets the count', async (t) => {
    const w = deadlineWorld();
    await w.instructions.save(instruction('i-1'));
    const pattern = [false, false, true, false, false, true, false, false];
    let data: DeadlineJob = { instruction_id: 'i-1', misses: 0 };
    for (const r of pattern) {
      w.setRunning(r);
      t.equal(await w.check(data), 'waiting');
      const next = w.rescheduled.at(-1);
      if (!next) throw new Error('no reschedule');
      data = next[0];
    }
    t.same(w.timedOut, []);
  });

  t.test('past maxWaitMs it times out, even while the agent says it runs it', async (t) => {
    const w = deadlineWorld({ maxWaitMs: 60_000 });
    await w.instructions.save(instruction('i-1'));
    w.advance(59_999);
    t.equal(await w.check({ instruction_id: 'i-1', misses: 0 }), 'waiting');
    w.advance(1);
    t.equal(await w.check({ instruction_id: 'i-1', misses: 0 }), 'timed_out');
    t.same(w.timedOut, [['i-1', ['web_config'], 60_000]]);
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
    (i) => `i-job1-${i}`,
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
    (i) => `i-many-${i}`,
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
      (i) => `i-job2-${i}`,
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

t.test(
  'deadlinesHandler: each checked as deadline does; the waiting ones rescheduled together',
  async (t) => {
    const w = deadlineWorld();
    for (const id of ['i-1', 'i-2', 'i-3']) await w.instructions.save(instruction(id));
    await w.instructions.finishTask('i-1', 'web_config', 'applied');
    w.setRunning(false);
    w.advance(5000);
    const again: [DeadlineJob[], number][] = [];
    const counts = await deadlinesHandler(
      {
        checks: [
          { instruction_id: 'i-1', misses: 0 },
          { instruction_id: 'i-2', misses: 0 },
          { instruction_id: 'i-3', misses: MISSES_ALLOWED - 1 },
        ],
      },
      {
        getInstruction: (id) => w.instructions.get(id),
        isRunning: async () => false,
        timeOut: async (record, tasks, waited) => {
          w.timedOut.push([record.instruction_id, tasks, waited]);
        },
        rescheduleAll: async (checks, delay) => {
          again.push([checks, delay]);
        },
        checkEveryMs: 5000,
        maxWaitMs: HOUR,
        now: () => T0 + 5000,
      },
    );
    t.same(counts, { finished: 1, waiting: 1, timed_out: 1 });
    t.same(again, [[[{ instruction_id: 'i-2', misses: 1 }], 5000]]);
    t.same(w.timedOut, [['i-3', ['web_config'], 5000]]);
  },
);

// ---- results -------------------------------------------------------------------------------------

const LABELS: Record<string, Labels> = { 'web-01': { role: 'web', env: 'prod' } };

/** The status store, able to fail once where a worker could be killed. */
class FlakyStatusStore extends MemoryStatusStore {
  failMarkAlerted = 0;
  override async markAlerted(
    agent: string,
    task: string,
    episodeId: string,
    event: Parameters<MemoryStatusStore['markAlerted']>[3],
  ): Promise<boolean> {
    if (this.failMarkAlerted > 0) {
      this.failMarkAlerted -= 1;
      throw new Error('worker killed');
    }
    return super.markAlerted(agent, task, episodeId, event);
  }
}

function resultWorld() {
  let clock = T0;
  const instructions = new MemoryInstructionStore();
  const events = new MemoryEventStore({ maxEventsPerAgent: 1000 });
  const statuses = new FlakyStatusStore({ ttlMs: HOUR, now: () => clock });
  const runs = new MemoryRunStore();
  const alerts: Alert[] = [];
  const retries: { job: ReconcileAgentJob; delayMs: number }[] = [];
  const deps: ResultDeps = {
    instructions,
    events,
    statuses,
    runs,
    labelsOf: async (agent) => LABELS[agent] ?? {},
    enqueueAlert: async (alert) => {
      alerts.push(alert);
    },
    retryLater: async (job, delayMs) => {
      retries.push({ job, delayMs });
    },
    logger: silentLogger,
    now: () => new Date(clock),
  };
  const dispatch = (record: InstructionRecord) => dispatchRecord(instructions, runs, record);
  const allEvents = async (): Promise<FlukeEvent[]> => (await events.query({ limit: 1000 })).events;
  return {
    deps,
    instructions,
    events,
    statuses,
    runs,
    alerts,
    retries,
    dispatch,
    allEvents,
    handle: (job: Parameters<typeof resultHandler>[0]) => resultHandler(job, deps),
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const distinct = (alerts: Alert[]) => [...new Set(alerts.map((a) => a.id))];
const alertSummary = (alerts: Alert[]) =>
  alerts.map((a) => [a.payload.event, a.payload.remediation_status, a.payload.drifted_steps]);

t.test('resultHandler', async (t) => {
  t.test('a task_result: one event, status, run progress; delivered twice changes nothing', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', { run_id: 'run-1', tasks: [['web_config', 'apply', 'remediate_and_alert']] }),
    );
    const job = taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]]);
    t.equal(await w.handle(job), 'applied');
    const status = await w.statuses.getStatus('web-01', 'web_config');
    const events = await w.allEvents();
    const alerts = [...w.alerts];
    w.advance(1000);
    t.equal(await w.handle(job), 'applied');
    t.same(await w.allEvents(), events, 'still one event');
    t.equal(events.length, 1);
    t.match(events[0], {
      kind: 'task_run',
      id: 'task_run:i-1.0',
      agent: 'web-01',
      labels: { role: 'web', env: 'prod' },
      task: 'web_config',
      revision: 'c0ffee',
      trigger: 'commit',
      mode: 'apply',
      policy: 'remediate_and_alert',
      instruction_id: 'i-1',
      execution_id: 'i-1.0',
      outcome: 'applied',
      steps: [{ step: 'config', outcome: 'applied' }],
    });
    t.same(await w.statuses.getStatus('web-01', 'web_config'), status, 'the status is as first judged');
    t.match(status, {
      outcome: 'applied',
      execution_id: 'i-1.0',
      drifted_steps: ['config'],
      failed_steps: [],
    });
    t.same(w.alerts, alerts, 'no alert twice');
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'in_progress', ['config']],
      ['drift_remediated', 'remediated', ['config']],
    ]);
    t.equal(await w.statuses.getEpisode('web-01', 'web_config'), null, 'the episode closed');
    t.same((await w.instructions.get('i-1'))?.pending, []);
    t.ok(w.instructions.completed.includes('i-1'));
    const run = await w.runs.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'web_config', outcome: 'applied', execution_id: 'i-1.0' },
    ]);
    t.equal(run?.done, true);
    t.equal(run?.summary.succeeded, 1);
  });

  t.test(
    'a worker killed between enqueueing an alert and claiming it: the retry re-sends the same id',
    async (t) => {
      const w = resultWorld();
      const record = await w.dispatch(
        instruction('i-1', { tasks: [['web_config', 'apply', 'remediate_and_alert']] }),
      );
      const job = taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]]);
      w.statuses.failMarkAlerted = 1;
      await t.rejects(w.handle(job), /worker killed/);
      t.equal(await w.handle(job), 'applied');
      t.equal(await w.handle(job), 'applied');
      t.equal(w.alerts.length, 3, 'drift_detected enqueued twice, drift_remediated once');
      t.equal(distinct(w.alerts).length, 2, 'but under one id each, so the queue keeps one');
      t.same(
        w.alerts.map((a) => a.payload.event),
        ['drift_detected', 'drift_detected', 'drift_remediated'],
      );
      t.equal((await w.allEvents()).length, 1);
      t.match(await w.statuses.getStatus('web-01', 'web_config'), {
        outcome: 'applied',
        execution_id: 'i-1.0',
      });
    },
  );

  t.test('alert_only drift: drift_detected once, however many checks find it', async (t) => {
    const w = resultWorld();
    for (let i = 1; i <= 3; i++) {
      const record = await w.dispatch(
        instruction(`i-${i}`, { trigger: 'drift_check', tasks: [['motd', 'check', 'alert_only']] }),
      );
      t.equal(await w.handle(taskResult(record, 'motd', 'drifted', [['motd', 'drifted', null]])), 'drifted');
      w.advance(60_000);
    }
    t.equal((await w.allEvents()).length, 1, 'the same drift found again is a quiet check');
    t.equal(w.alerts.length, 1);
    t.match(w.alerts[0]?.payload, {
      event: 'drift_detected',
      timestamp: '2025-03-13T14:22:01Z',
      agent: { name: 'web-01', labels: { role: 'web', env: 'prod' } },
      task: 'motd',
      policy: 'alert_only',
      remediation_status: 'pending_manual',
      revision: 'c0ffee',
      drifted_steps: ['motd'],
    });
    t.match(await w.statuses.listProblems(), [
      { agent: 'web-01', status: { task: 'motd', outcome: 'drifted' } },
    ]);
    t.match(await w.statuses.getEpisode('web-01', 'motd'), { id: 'i-1.0', alerts: ['drift_detected'] });
    // A manual reconcile applies it: the episode closes with its all-clear.
    const manual = await w.dispatch(
      instruction('i-4', { trigger: 'manual', tasks: [['motd', 'apply', 'alert_only']] }),
    );
    await w.handle(taskResult(manual, 'motd', 'applied', [['motd', 'applied', 0]]));
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'pending_manual', ['motd']],
      ['drift_remediated', 'remediated', ['motd']],
    ]);
    t.same(await w.statuses.listProblems(), []);
  });

  t.test(
    'quiet checks: a satisfied drift check after a satisfied run at the same revision records no event',
    async (t) => {
      const w = resultWorld();
      const run = async (
        id: string,
        trigger: 'drift_check' | 'commit' | 'manual',
        outcome: 'satisfied' | 'drifted',
      ) => {
        const record = await w.dispatch(
          instruction(id, { trigger, tasks: [['motd', 'check', 'alert_only']] }),
        );
        await w.handle(taskResult(record, 'motd', outcome, [['motd', outcome, null]]));
        w.advance(60_000);
      };
      await run('i-1', 'drift_check', 'satisfied'); // first ever: recorded
      await run('i-2', 'drift_check', 'satisfied'); // quiet
      await run('i-3', 'drift_check', 'satisfied'); // quiet
      t.equal((await w.allEvents()).length, 1, 'only the first satisfied check is an event');
      t.match(await w.statuses.getStatus('web-01', 'motd'), { outcome: 'satisfied', execution_id: 'i-3.0' });
      await run('i-4', 'manual', 'satisfied'); // manual runs are always recorded
      await run('i-5', 'drift_check', 'drifted'); // a change is recorded
      await run('i-6', 'drift_check', 'drifted'); // the same drift again: quiet
      await run('i-7', 'drift_check', 'satisfied'); // the way back is recorded
      await run('i-8', 'drift_check', 'satisfied'); // quiet again
      t.same((await w.allEvents()).map((e) => ('execution_id' in e ? e.execution_id : '')).sort(), [
        'i-1.0',
        'i-4.0',
        'i-5.0',
        'i-7.0',
      ]);
    },
  );

  t.test('remediate_and_alert: drift_detected, then drift_remediated; remediate: silent', async (t) => {
    const w = resultWorld();
    const loud = await w.dispatch(
      instruction('i-1', {
        trigger: 'drift_check',
        tasks: [
          ['db_backup', 'apply', 'remediate_and_alert'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    await w.handle(taskResult(loud, 'db_backup', 'applied', [['timer', 'applied', 0]]));
    await w.handle(taskResult(loud, 'web_config', 'applied', [['config', 'applied', 0]]));
    t.same(
      w.alerts.map((a) => [a.payload.task, a.payload.event, a.payload.remediation_status]),
      [
        ['db_backup', 'drift_detected', 'in_progress'],
        ['db_backup', 'drift_remediated', 'remediated'],
      ],
    );
    t.same(
      w.alerts.map((a) => a.episode_id),
      ['i-1.0', 'i-1.0'],
    );
    t.equal((await w.allEvents()).length, 2);
    t.ok(w.instructions.completed.includes('i-1'), 'both tasks in: the instruction is complete');
  });

  t.test('a failed remediation alerts remediation_failed', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', { tasks: [['db_backup', 'apply', 'remediate_and_alert']] }),
    );
    await w.handle(taskResult(record, 'db_backup', 'failed', [['timer', 'failed', 1]]));
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'in_progress', ['timer']],
      ['remediation_failed', 'failed', ['timer']],
    ]);
  });

  t.test('busy: the reconcile is put back with retry + 1, its tasks re-queued', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        trigger: 'manual',
        run_id: 'run-1',
        retry: 4,
        tasks: [
          ['motd', 'apply', 'alert_only'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    const busy = receipt(record, false, 'task "motd" is already executing (instruction i-0)');
    t.equal(await w.handle(busy), 'busy');
    t.same(w.retries, [
      {
        job: { agent: 'web-01', trigger: 'manual', run_id: 'run-1', tasks: ['motd', 'web_config'], retry: 5 },
        delayMs: BUSY_RETRY_MS,
      },
    ]);
    t.same((await w.instructions.get('i-1'))?.pending, []);
    t.equal(w.instructions.taskState('i-1', 'motd'), 'requeued');
    t.ok(w.instructions.completed.includes('i-1'));
    t.same(await w.allEvents(), [], 'no event: nothing ran, nothing failed');
    const run = await w.runs.get('run-1');
    t.equal(run?.done, false, 'the run waits for the retry');
    t.equal(run?.summary.pending, 2);

    t.equal(await w.handle(busy), 'busy', 'the same receipt delivered again');
    t.equal(w.retries.length, 1, 'is not put back twice');
  });

  t.test('busy past the retry budget: undeliverable events', async (t) => {
    const w = resultWorld();
    const exhausted = await w.dispatch(
      instruction('i-1', { trigger: 'manual', run_id: 'run-1', retry: BUSY_RETRIES }),
    );
    const busy = receipt(exhausted, false, 'task "web_config" is already executing');
    t.equal(await w.handle(busy), 'refused');
    t.equal(await w.handle(busy), 'refused', 'delivered twice');
    t.same(w.retries, []);
    t.same(
      (await w.allEvents()).map((e) => [e.kind, e.id, e.kind === 'undeliverable' ? e.reason : '']),
      [['undeliverable', 'undeliverable:i-1.0', 'refused: task "web_config" is already executing']],
    );
    const run = await w.runs.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'web_config', outcome: 'undeliverable', execution_id: 'i-1.0' },
    ]);
    t.equal(run?.done, true);
    t.ok(w.instructions.completed.includes('i-1'));
    t.equal(await w.statuses.getStatus('web-01', 'web_config'), null, 'no status: nothing was judged');
  });

  t.test('a drift check refused as busy is skipped quietly: the running apply will report', async (t) => {
    const w = resultWorld();
    const drift = await w.dispatch(instruction('i-2', { trigger: 'drift_check' }));
    t.equal(await w.handle(receipt(drift, false, 'task "web_config" is already executing')), 'busy_skipped');
    t.same(w.retries, []);
    t.same(await w.allEvents(), []);
    t.same((await w.instructions.get('i-2'))?.pending, []);
    t.equal(w.instructions.taskState('i-2', 'web_config'), 'requeued');
    t.ok(w.instructions.completed.includes('i-2'));
  });

  t.test('a duplicate refusal (the agent already has the id) and an acceptance change nothing', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1', { run_id: 'run-1' }));
    t.equal(await w.handle(receipt(record, false, 'duplicate instruction id i-1')), 'duplicate');
    t.equal(await w.handle(receipt(record, true, null)), 'accepted');
    t.same((await w.instructions.get('i-1'))?.pending, ['web_config']);
    t.same(await w.allEvents(), []);
    t.same(w.retries, []);
    t.equal((await w.runs.get('run-1'))?.summary.pending, 1);
  });

  t.test('an undeliverable instruction: one event per pending task, and run progress', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        run_id: 'run-1',
        tasks: [
          ['motd', 'check', 'alert_only'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    await w.handle(taskResult(record, 'motd', 'satisfied', [['motd', 'satisfied', null]]));
    const job = {
      kind: 'undeliverable',
      agent: 'web-01',
      instruction_id: 'i-1',
      reason: 'gateway gw-1 gone',
    } as const;
    t.equal(await w.handle(job), 'undeliverable');
    t.equal(await w.handle(job), 'undeliverable', 'delivered twice');
    const events = await w.allEvents();
    t.same(events.map((e) => [e.kind, e.task]).sort(), [
      ['task_run', 'motd'],
      ['undeliverable', 'web_config'],
    ]);
    t.match(
      events.find((e) => e.kind === 'undeliverable'),
      { reason: 'gateway gw-1 gone', mode: 'apply', execution_id: 'i-1.1', policy: 'remediate' },
    );
    const run = await w.runs.get('run-1');
    t.same(run?.results, [
      { agent: 'web-01', task: 'motd', outcome: 'satisfied', execution_id: 'i-1.0' },
      { agent: 'web-01', task: 'web_config', outcome: 'undeliverable', execution_id: 'i-1.1' },
    ]);
    t.equal(run?.done, true);
  });

  t.test('results for an unknown instruction are ignored', async (t) => {
    const w = resultWorld();
    const record = instruction('i-gone', { run_id: 'run-1' });
    t.equal(
      await w.handle(taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]])),
      'unknown_instruction',
    );
    t.equal(
      await w.handle({ kind: 'undeliverable', agent: 'web-01', instruction_id: 'i-gone', reason: 'x' }),
      'unknown_instruction',
    );
    t.same(await w.allEvents(), []);
    t.equal(await w.statuses.getStatus('web-01', 'web_config'), null);
    t.equal(await w.runs.get('run-1'), null);
  });

  t.test('progress, and results for a task the instruction does not have', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1'));
    const other = instruction('i-1', { tasks: [['elsewhere', 'apply', 'remediate']] });
    t.equal(await w.handle(taskResult(other, 'elsewhere', 'applied', [['x', 'applied', 0]])), 'unknown_task');
    t.equal(
      await w.handle(
        resultJob(record, {
          type: 'step_result',
          result_id: 'r-s',
          instruction_id: 'i-1',
          execution_id: 'i-1.0',
          task: 'web_config',
          result: taskResultStep(),
        }),
      ),
      'progress',
    );
    t.same(await w.allEvents(), []);
    t.same((await w.instructions.get('i-1'))?.pending, ['web_config']);
  });

  t.test('a failed check in apply mode with an alerting policy alerts before the apply ends', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        tasks: [
          ['db_backup', 'apply', 'remediate_and_alert'],
          ['motd', 'check', 'alert_only'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    for (const [i, task, step] of [
      [0, 'db_backup', 'timer'],
      [1, 'motd', 'motd'],
      [2, 'web_config', 'config'],
    ] as const) {
      t.equal(await w.handle(checkResult(record, `i-1.${i}`, task, step, false)), 'check');
    }
    t.same(
      alertSummary(w.alerts),
      [['drift_detected', 'in_progress', ['timer']]],
      'only the apply that alerts',
    );
    t.equal(w.alerts[0]?.payload.task, 'db_backup');
    t.equal(await w.statuses.getStatus('web-01', 'db_backup'), null, 'the status waits for the result');
    t.same(await w.allEvents(), [], 'a check is not an event');
    t.same((await w.instructions.get('i-1'))?.pending, ['db_backup', 'motd', 'web_config']);
    // The apply ends: the all-clear follows, drift_detected is not repeated.
    await w.handle(taskResult(record, 'db_backup', 'applied', [['timer', 'applied', 0]]));
    t.same(
      w.alerts.map((a) => a.payload.event),
      ['drift_detected', 'drift_remediated'],
    );
    t.equal(distinct(w.alerts).length, 2);
  });
});

function taskResultStep() {
  return {
    step: 'config',
    type: 'shell' as const,
    outcome: 'applied' as const,
    exit_code: 0,
    apply_exit_code: 0,
    duration_ms: 3,
    output_tail: '',
    error: null,
  };
}

/** Single-message jobs packed as the gateway packs one flush. */
function batchOf(...jobs: ResultJob[]): Extract<ResultJob, { kind: 'results' }> {
  return {
    kind: 'results',
    gateway_id: 'gw-1',
    items: jobs.map((j) => {
      if (j.kind !== 'result') throw new Error('only forwarded messages batch');
      return { agent: j.agent, session_id: j.session_id, received_at: j.received_at, message: j.message };
    }),
  };
}

t.test('resultsHandler (batched results jobs)', async (t) => {
  t.test(
    'a whole instruction in one job: same events, statuses, alerts and progress as one by one',
    async (t) => {
      const tasks: [string, RunMode, DriftPolicy][] = [
        ['db_backup', 'apply', 'remediate_and_alert'],
        ['web_config', 'apply', 'remediate'],
        ['motd', 'check', 'alert_only'],
      ];
      const messages = (record: InstructionRecord) => [
        receipt(record, true, null),
        taskResult(record, 'db_backup', 'applied', [['timer', 'applied', 0]]),
        taskResult(record, 'web_config', 'satisfied', [['config', 'satisfied', null]]),
        taskResult(record, 'motd', 'drifted', [['motd', 'drifted', null]]),
      ];
      const single = resultWorld();
      const r1 = await single.dispatch(instruction('i-1', { run_id: 'run-1', tasks }));
      for (const job of messages(r1)) await single.handle(job);
      const batched = resultWorld();
      const r2 = await batched.dispatch(instruction('i-1', { run_id: 'run-1', tasks }));
      t.same(await resultsHandler(batchOf(...messages(r2)), batched.deps), {
        accepted: 1,
        applied: 1,
        satisfied: 1,
        drifted: 1,
      });
      t.same(await batched.allEvents(), await single.allEvents(), 'the same events');
      t.equal((await batched.allEvents()).length, 3);
      t.same(await batched.statuses.listStatuses('web-01'), await single.statuses.listStatuses('web-01'));
      t.same(await batched.statuses.listProblems(), await single.statuses.listProblems());
      for (const [task] of tasks) {
        t.same(
          await batched.statuses.getEpisode('web-01', task),
          await single.statuses.getEpisode('web-01', task),
          `episode of ${task}`,
        );
      }
      t.same(batched.alerts, single.alerts, 'the same alerts, in the same order');
      t.same(alertSummary(batched.alerts), [
        ['drift_detected', 'in_progress', ['timer']],
        ['drift_remediated', 'remediated', ['timer']],
        ['drift_detected', 'pending_manual', ['motd']],
      ]);
      t.same((await batched.instructions.get('i-1'))?.pending, []);
      t.ok(batched.instructions.completed.includes('i-1'));
      t.same(await batched.runs.get('run-1'), await single.runs.get('run-1'));

      // Redelivered (at-least-once) and a message re-sent inside a later batch: nothing changes.
      const events = await batched.allEvents();
      const statuses = await batched.statuses.listStatuses('web-01');
      const alerts = [...batched.alerts];
      batched.advance(1000);
      await resultsHandler(batchOf(...messages(r2)), batched.deps);
      await resultsHandler(batchOf(messages(r2)[3] as ResultJob, messages(r2)[3] as ResultJob), batched.deps);
      t.same(await batched.allEvents(), events, 'no event twice');
      t.same(await batched.statuses.listStatuses('web-01'), statuses, 'statuses as first judged');
      t.same(distinct(batched.alerts), distinct(alerts), 'no new alert id');
    },
  );

  t.test(
    'several agents and instructions in one job; a failing agent fails the job, others still done',
    async (t) => {
      const w = resultWorld();
      const a = await w.dispatch(instruction('i-1', { tasks: [['motd', 'check', 'alert_only']] }));
      const b = await w.dispatch(
        instruction('i-2', { agent: 'db-01', tasks: [['db_backup', 'apply', 'remediate_and_alert']] }),
      );
      w.statuses.failMarkAlerted = 1;
      const job = batchOf(
        taskResult(a, 'motd', 'drifted', [['motd', 'drifted', null]]),
        taskResult(b, 'db_backup', 'satisfied', [['timer', 'satisfied', null]]),
      );
      await t.rejects(resultsHandler(job, w.deps), /worker killed/);
      t.match(
        await w.statuses.getStatus('db-01', 'db_backup'),
        { outcome: 'satisfied' },
        'the other agent is done',
      );
      t.equal(await w.statuses.getStatus('web-01', 'motd'), null, 'no status before its alert is claimed');
      t.same((await w.instructions.get('i-1'))?.pending, ['motd'], 'the failed task stays pending');
      // The retry finishes it, once.
      t.same(await resultsHandler(job, w.deps), { drifted: 1, satisfied: 1 });
      t.match(await w.statuses.getStatus('web-01', 'motd'), { outcome: 'drifted', execution_id: 'i-1.0' });
      t.equal(distinct(w.alerts).length, 1);
      t.ok(w.instructions.completed.includes('i-1'));
      t.ok(w.instructions.completed.includes('i-2'));
      t.equal((await w.allEvents()).length, 2);
    },
  );

  t.test('a result sent by another agent is applied where the single handler applies it', async (t) => {
    const run = async (batched: boolean) => {
      const w = resultWorld();
      const record = await w.dispatch(instruction('i-1', { tasks: [['motd', 'check', 'alert_only']] }));
      const job = taskResult(record, 'motd', 'drifted', [['motd', 'drifted', null]]);
      if (job.kind !== 'result') throw new Error('unexpected');
      const foreign = { ...job, agent: 'db-01' };
      if (batched) await resultsHandler(batchOf(foreign), w.deps);
      else await w.handle(foreign);
      return {
        web: await w.statuses.listStatuses('web-01'),
        db: await w.statuses.listStatuses('db-01'),
        episode: await w.statuses.getEpisode('web-01', 'motd'),
      };
    };
    const single = await run(false);
    t.equal(single.web.length, 1);
    t.same(await run(true), single);
  });

  t.test('a busy receipt and a refusal inside a batch', async (t) => {
    const w = resultWorld();
    const busy = await w.dispatch(
      instruction('i-1', { trigger: 'manual', tasks: [['motd', 'apply', 'alert_only']] }),
    );
    const refused = await w.dispatch(instruction('i-2', { tasks: [['web_config', 'apply', 'remediate']] }));
    t.same(
      await resultsHandler(
        batchOf(
          receipt(busy, false, 'task "motd" is already executing (instruction i-0)'),
          receipt(refused, false, 'bad revision'),
          taskResult(refused, 'web_config', 'applied', [['config', 'applied', 0]]),
        ),
        w.deps,
      ),
      { busy: 1, refused: 1, unknown_instruction: 1 },
    );
    t.equal(w.retries.length, 1);
    t.equal(w.instructions.taskState('i-1', 'motd'), 'requeued');
    t.equal(w.instructions.taskState('i-2', 'web_config'), 'undeliverable');
    t.ok(w.instructions.completed.includes('i-1'));
    t.ok(w.instructions.completed.includes('i-2'));
    t.match(await w.allEvents(), [{ kind: 'undeliverable', task: 'web_config' }]);
  });
});

t.test('timeOutTasks', async (t) => {
  t.test('pending tasks become timeouts: events, status, run progress, once', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', {
        run_id: 'run-1',
        tasks: [
          ['db_backup', 'apply', 'remediate_and_alert'],
          ['web_config', 'apply', 'remediate'],
        ],
      }),
    );
    await w.handle(taskResult(record, 'web_config', 'satisfied', [['config', 'satisfied', null]]));
    await timeOutTasks(w.deps, record, ['db_backup'], 30_000);
    await timeOutTasks(w.deps, record, ['db_backup'], 35_000);
    const timeouts = (await w.allEvents()).filter((e) => e.kind === 'timeout');
    t.equal(timeouts.length, 1, 'a repeated timeout is the same event');
    t.match(timeouts[0], { id: 'timeout:i-1.0', task: 'db_backup', outcome: 'timeout', waited_ms: 30_000 });
    t.match(await w.statuses.getStatus('web-01', 'db_backup'), { outcome: 'timeout', execution_id: 'i-1.0' });
    t.match(await w.statuses.getStatus('web-01', 'web_config'), { outcome: 'satisfied' });
    t.same(w.alerts, [], 'a timeout with no known drift does not alert');
    const run = await w.runs.get('run-1');
    t.equal(run?.summary.timed_out, 1);
    t.equal(run?.summary.succeeded, 1);
    t.equal(run?.done, true);
    t.ok(w.instructions.completed.includes('i-1'));
  });

  t.test('a late result after its timeout still counts', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(instruction('i-1', { run_id: 'run-1' }));
    await timeOutTasks(w.deps, record, ['web_config'], 30_000);
    t.equal(
      await w.handle(taskResult(record, 'web_config', 'applied', [['config', 'applied', 0]])),
      'applied',
    );
    t.match(await w.statuses.getStatus('web-01', 'web_config'), {
      outcome: 'applied',
      execution_id: 'i-1.0',
    });
    t.same((await w.runs.get('run-1'))?.results, [
      { agent: 'web-01', task: 'web_config', outcome: 'applied', execution_id: 'i-1.0' },
    ]);
  });

  t.test('a timeout of an apply with known drift alerts remediation_failed', async (t) => {
    const w = resultWorld();
    const record = await w.dispatch(
      instruction('i-1', { tasks: [['db_backup', 'apply', 'remediate_and_alert']] }),
    );
    await w.handle(checkResult(record, 'i-1.0', 'db_backup', 'timer', false));
    await timeOutTasks(w.deps, record, ['db_backup'], 30_000);
    t.same(alertSummary(w.alerts), [
      ['drift_detected', 'in_progress', ['timer']],
      ['remediation_failed', 'failed', ['timer']],
    ]);
  });
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
