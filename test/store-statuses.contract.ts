/**
 * The status store contract (store/statuses/status-store.ts), run against the memory twin and the
 * Redis implementation by store-statuses.test.ts.
 */
import type { Test } from 'tap';
import type { NewDriftEpisode, TaskStatus } from '../shared/status.js';
import type { TaskOutcome } from '../shared/types.js';
import type { StatusStore } from '../store/statuses/status-store.js';

export interface StatusStoreHarness {
  make(): Promise<{ store: StatusStore; expire(agent: string): Promise<void> }>;
}

function status(task: string, outcome: TaskOutcome, execution_id = 'i1.0'): TaskStatus {
  return {
    task,
    outcome,
    mode: 'apply',
    revision: 'c0ffee',
    execution_id,
    at: '2025-03-13T14:22:01.000Z',
    drifted_steps: outcome === 'drifted' ? ['renew'] : [],
    failed_steps: outcome === 'failed' ? ['renew'] : [],
    policy: 'alert_only',
  };
}

function episode(task: string, id: string): NewDriftEpisode {
  return {
    id,
    task,
    opened_at: '2025-03-13T14:22:01.000Z',
    revision: 'c0ffee',
    policy: 'alert_only',
    drifted_steps: ['renew'],
  };
}

export function statusStoreContract(t: Test, harness: StatusStoreHarness): void {
  t.test('keeps the last status per (agent, task)', async (t) => {
    const { store } = await harness.make();
    t.equal(await store.getStatus('web-01', 'certs'), null);
    await store.setStatus('web-01', status('certs', 'drifted', 'i1.0'));
    await store.setStatus('web-01', status('certs', 'applied', 'i2.0'));
    await store.setStatus('web-01', status('app', 'satisfied'));
    await store.setStatus('web-02', status('certs', 'failed'));
    t.same(await store.getStatus('web-01', 'certs'), status('certs', 'applied', 'i2.0'));
    t.same(await store.listStatuses('web-01'), [
      status('app', 'satisfied'),
      status('certs', 'applied', 'i2.0'),
    ]);
    t.same(await store.listStatuses('web-03'), []);
  });

  t.test('lists what is drifted or failing, and drops what recovered', async (t) => {
    const { store } = await harness.make();
    const outcomes: TaskOutcome[] = [
      'satisfied',
      'applied',
      'drifted',
      'unconverged',
      'failed',
      'skipped',
      'timeout',
    ];
    for (const outcome of outcomes) await store.setStatus('web-02', status(outcome, outcome));
    await store.setStatus('web-01', status('z', 'drifted'));
    t.same(
      (await store.listProblems()).map((p) => `${p.agent}/${p.status.task}`),
      ['web-01/z', 'web-02/drifted', 'web-02/failed', 'web-02/timeout', 'web-02/unconverged'],
    );
    await store.setStatus('web-02', status('drifted', 'applied'));
    await store.setStatus('web-02', status('failed', 'satisfied'));
    const problems = await store.listProblems();
    t.same(
      problems.map((p) => `${p.agent}/${p.status.task}`),
      ['web-01/z', 'web-02/timeout', 'web-02/unconverged'],
    );
    t.same(problems[0]?.status, status('z', 'drifted'));
  });

  t.test('an episode opens once, and each alert is claimed once per episode', async (t) => {
    const { store } = await harness.make();
    t.equal(await store.getEpisode('web-01', 'certs'), null);
    t.equal(
      await store.markAlerted('web-01', 'certs', 'i1.0', 'drift_detected'),
      false,
      'no episode, no claim',
    );
    t.equal(await store.openEpisode('web-01', episode('certs', 'i1.0')), true);
    t.equal(await store.openEpisode('web-01', episode('certs', 'i1.0')), false, 'a retry');
    t.equal(
      await store.openEpisode('web-01', episode('certs', 'i2.0')),
      false,
      'a later run while drift persists',
    );
    t.same(await store.getEpisode('web-01', 'certs'), { ...episode('certs', 'i1.0'), alerts: [] });
    t.equal(await store.markAlerted('web-01', 'certs', 'i1.0', 'remediation_failed'), true);
    t.equal(await store.markAlerted('web-01', 'certs', 'i1.0', 'drift_detected'), true);
    t.equal(await store.markAlerted('web-01', 'certs', 'i1.0', 'drift_detected'), false);
    t.equal(
      await store.markAlerted('web-01', 'certs', 'i9.0', 'drift_remediated'),
      false,
      'not the open episode',
    );
    t.same((await store.getEpisode('web-01', 'certs'))?.alerts, ['drift_detected', 'remediation_failed']);
    t.equal(await store.getEpisode('web-01', 'other'), null);
    t.equal(await store.getEpisode('web-02', 'certs'), null);
  });

  t.test('closing an episode, and a new one starting clean', async (t) => {
    const { store } = await harness.make();
    await store.openEpisode('web-01', episode('certs', 'i1.0'));
    await store.markAlerted('web-01', 'certs', 'i1.0', 'drift_detected');
    t.equal(await store.closeEpisode('web-01', 'certs', 'i0.0'), false, 'another episode id');
    t.equal(await store.closeEpisode('web-01', 'certs', 'i1.0'), true);
    t.equal(await store.closeEpisode('web-01', 'certs', 'i1.0'), false, 'a retry');
    t.equal(await store.getEpisode('web-01', 'certs'), null);
    t.equal(await store.markAlerted('web-01', 'certs', 'i1.0', 'drift_remediated'), false, 'closed');
    t.equal(await store.openEpisode('web-01', episode('certs', 'i3.0')), true);
    t.same((await store.getEpisode('web-01', 'certs'))?.alerts, []);
    t.equal(await store.markAlerted('web-01', 'certs', 'i3.0', 'drift_detected'), true);
    t.equal(await store.closeEpisode('web-01', 'certs'), true, 'without an id: whatever is open');
    t.equal(await store.closeEpisode('web-01', 'nothing'), false);
  });

  t.test('forgets the tasks an agent no longer matches', async (t) => {
    const { store } = await harness.make();
    await store.setStatus('web-01', status('keep', 'drifted'));
    await store.setStatus('web-01', status('gone', 'failed'));
    await store.openEpisode('web-01', episode('gone', 'i1.0'));
    await store.markAlerted('web-01', 'gone', 'i1.0', 'drift_detected');
    await store.openEpisode('web-01', episode('also-gone', 'i1.1'));
    await store.setStatus('web-02', status('gone', 'failed'));
    t.same(await store.forgetTasks('web-01', ['keep']), ['also-gone', 'gone']);
    t.same(await store.forgetTasks('web-01', ['keep']), [], 'idempotent');
    t.same(
      (await store.listStatuses('web-01')).map((s) => s.task),
      ['keep'],
    );
    t.equal(await store.getEpisode('web-01', 'gone'), null);
    t.equal(await store.getEpisode('web-01', 'also-gone'), null);
    t.same(
      (await store.listProblems()).map((p) => `${p.agent}/${p.status.task}`),
      ['web-01/keep', 'web-02/gone'],
    );
    t.same(await store.forgetTasks('web-03', []), []);
  });

  t.test('batch writes and the per-agent snapshot agree with the single calls', async (t) => {
    const { store } = await harness.make();
    t.same(await store.snapshot('web-01'), { statuses: new Map(), episodes: new Map() }, 'unknown agent');
    await store.setStatuses('web-01', []);
    t.same(await store.listStatuses('web-01'), [], 'an empty batch writes nothing');
    await store.setStatuses('web-01', [
      status('certs', 'drifted', 'i1.0'),
      status('nginx', 'satisfied', 'i1.1'),
      status('certs', 'failed', 'i1.2'),
    ]);
    await store.setStatuses('db-01', [status('backup', 'drifted')]);
    t.same(
      await store.getStatus('web-01', 'certs'),
      status('certs', 'failed', 'i1.2'),
      'the later entry wins',
    );
    t.same(await store.getStatus('web-01', 'nginx'), status('nginx', 'satisfied', 'i1.1'));
    t.same(
      (await store.listProblems()).map((p) => [p.agent, p.status.task, p.status.outcome]),
      [
        ['db-01', 'backup', 'drifted'],
        ['web-01', 'certs', 'failed'],
      ],
    );
    await store.setStatuses('web-01', [status('certs', 'satisfied', 'i2.0')]);
    t.same(
      (await store.listProblems()).map((p) => [p.agent, p.status.task]),
      [['db-01', 'backup']],
      'a recovered task leaves the problem index',
    );
    t.ok(await store.openEpisode('web-01', episode('certs', 'i3.0')));
    t.ok(await store.markAlerted('web-01', 'certs', 'i3.0', 'drift_detected'));
    const snap = await store.snapshot('web-01');
    t.same([...snap.statuses.keys()].sort(), ['certs', 'nginx']);
    t.same(snap.statuses.get('certs'), await store.getStatus('web-01', 'certs'));
    t.same([...snap.episodes.keys()], ['certs']);
    t.same(snap.episodes.get('certs'), await store.getEpisode('web-01', 'certs'));
    t.same(snap.episodes.get('certs')?.alerts, ['drift_detected']);
    t.ok(await store.closeEpisode('web-01', 'certs', 'i3.0'));
    t.same((await store.snapshot('web-01')).episodes, new Map(), 'a closed episode is gone');
  });

  t.test('setStatusesMany and snapshots: what setStatuses and snapshot do, per agent', async (t) => {
    const { store } = await harness.make();
    await store.setStatus('web-01', status('certs', 'drifted', 'i0.0'));
    await store.setStatus('web-02', status('certs', 'satisfied', 'i0.1'));
    t.ok(await store.openEpisode('web-01', episode('certs', 'i0.0')));
    t.ok(await store.markAlerted('web-01', 'certs', 'i0.0', 'drift_detected'));
    const before = await store.snapshots(['web-01', 'web-02', 'db-01']);
    t.same(before, [
      await store.snapshot('web-01'),
      await store.snapshot('web-02'),
      await store.snapshot('db-01'),
    ]);
    t.same(await store.snapshots([]), []);
    const results = await store.setStatusesMany([
      // Recovered: leaves the problem index (its previous status says it was a problem).
      { agent: 'web-01', statuses: [status('certs', 'satisfied', 'i1.0')], previous: before[0]?.statuses },
      // Fine before and after (the hint lets the store skip the index).
      {
        agent: 'web-02',
        statuses: [status('certs', 'satisfied', 'i1.1'), status('nginx', 'failed', 'i1.2')],
        previous: before[1]?.statuses,
      },
      { agent: 'db-01', statuses: [] },
      // No hint.
      {
        agent: 'db-02',
        statuses: [status('backup', 'drifted', 'i1.3'), status('backup', 'timeout', 'i1.4')],
      },
    ]);
    t.same(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
    );
    t.same(await store.getStatus('web-01', 'certs'), status('certs', 'satisfied', 'i1.0'));
    t.same(await store.listStatuses('web-02'), [
      status('certs', 'satisfied', 'i1.1'),
      status('nginx', 'failed', 'i1.2'),
    ]);
    t.same(await store.listStatuses('db-02'), [status('backup', 'timeout', 'i1.4')], 'the later entry wins');
    t.same(
      (await store.listProblems()).map((p) => [p.agent, p.status.task, p.status.outcome]),
      [
        ['db-02', 'backup', 'timeout'],
        ['web-02', 'nginx', 'failed'],
      ],
    );
    const some = await store.snapshots(['web-02', 'web-01'], [['nginx', 'no_such_task'], undefined]);
    t.same([...(some[0]?.statuses.keys() ?? [])], ['nginx'], 'only the tasks asked for');
    t.same(some[0]?.statuses.get('nginx'), status('nginx', 'failed', 'i1.2'));
    t.same(some[1], await store.snapshot('web-01'), 'all of them when none is named');
    const after = await store.snapshots(['web-01']);
    t.same(after, [await store.snapshot('web-01')]);
    t.same(after[0]?.episodes.get('certs')?.alerts, ['drift_detected'], 'episodes are not touched');
  });

  t.test('an agent not heard from for the TTL is forgotten', async (t) => {
    const { store, expire } = await harness.make();
    await store.setStatus('web-01', status('certs', 'drifted'));
    await store.openEpisode('web-01', episode('certs', 'i1.0'));
    await store.setStatus('web-02', status('certs', 'drifted'));
    await expire('web-01');
    t.equal(await store.getStatus('web-01', 'certs'), null);
    t.equal(await store.getEpisode('web-01', 'certs'), null);
    t.same(
      (await store.listProblems()).map((p) => p.agent),
      ['web-02'],
    );
    t.equal(await store.openEpisode('web-01', episode('certs', 'i2.0')), true, 'a new episode after expiry');
  });
}
