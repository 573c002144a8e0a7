/**
 * Fluke on a real Redis Cluster (3 masters, 3 replicas; `server.redis.cluster_nodes`): the whole
 * loop with real agent processes (commit → apply → drift → remediation → results → events), then
 * a master failover while agents apply: the results queue's master is killed, its replica takes
 * over, every result is recorded and no command runs twice (each execution appends a line). The
 * gateways' own master failing over is covered by test/cluster-failover-client.test.ts.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { Keys } from '../shared/keys.js';
import { startRedisCluster } from '../testkit/redis-cluster.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';

interface Events {
  events: FlukeEvent[];
}
type TaskRun = Extract<FlukeEvent, { kind: 'task_run' }>;

const runs = (events: FlukeEvent[], task: string): TaskRun[] =>
  events.filter((e): e is TaskRun => e.kind === 'task_run' && e.task === task);

/** A task whose every step appends a line to `<dir>/applies.log` when it runs its command. */
const countingTask = (name: string, role: string, dir: string, steps: string[], sleep = 0) => `
task "${name}" {
  selector { match_labels = { role = "${role}" } }
${steps
  .map(
    (s) => `  shell "${s}" {
    check   = "test -f ${dir}/${s}"
    command = "${sleep > 0 ? `sleep ${sleep}; ` : ''}echo ${s} >> ${dir}/applies.log; echo ${s} > ${dir}/${s}"
  }`,
  )
  .join('\n')}
}
`;

const applies = (dir: string): string[] =>
  existsSync(join(dir, 'applies.log'))
    ? readFileSync(join(dir, 'applies.log'), 'utf8').trim().split('\n')
    : [];

t.test('on a Redis Cluster', async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());

  t.test('commit → apply → drift → remediation → results → events', async (t) => {
    const web = sandbox(t);
    const db = sandbox(t);
    const sys = await startSystem(t, {
      cluster: { ...cluster, prefix: `${cluster.prefix}-e2e` },
      files: {
        'web.fluke.hcl': countingTask('site', 'web', web, ['index', 'config']),
        'db.fluke.hcl': countingTask('schema', 'db', db, ['schema']),
      },
    });
    t.same(sys.config.redis.cluster_nodes, cluster.nodes, 'the server runs on the cluster');
    await sys.startAgent('web-01', { role: 'web' });
    await sys.startAgent('db-01', { role: 'db' });

    await waitFor('web files', async () => existsSync(join(web, 'config')), Boolean, 60_000);
    await waitFor('db file', async () => existsSync(join(db, 'schema')), Boolean, 60_000);
    t.notOk(existsSync(join(web, 'schema')), 'the web host never ran the db task');
    const first = await waitFor(
      'applied event',
      () => sys.get<Events>('/api/v1/events?agent=web-01'),
      (p) => runs(p.events, 'site').some((e) => e.outcome === 'applied'),
      60_000,
    );
    t.match(
      runs(first.events, 'site').find((e) => e.outcome === 'applied'),
      {
        agent: 'web-01',
        mode: 'apply',
        revision: /^[0-9a-f]{40}$/,
      },
    );

    // Drift: only the drifted step is applied again.
    const deletedAt = new Date().toISOString();
    unlinkSync(join(web, 'config'));
    const isFix = (e: TaskRun) => e.at >= deletedAt && e.outcome === 'applied';
    const later = await waitFor(
      'drift remediation',
      () => sys.get<Events>('/api/v1/events?agent=web-01&task=site'),
      (p) => runs(p.events, 'site').some(isFix),
      60_000,
    );
    t.same(
      runs(later.events, 'site')
        .find(isFix)
        ?.steps.map((s) => [s.step, s.outcome]),
      [
        ['index', 'satisfied'],
        ['config', 'applied'],
      ],
    );

    // A new commit reaches the host.
    await sys.repo.commit({
      'web.fluke.hcl': countingTask('site', 'web', web, ['index', 'config', 'extra']),
    });
    await waitFor('the new step', async () => existsSync(join(web, 'extra')), Boolean, 60_000);
    t.same(applies(web).sort(), ['config', 'config', 'extra', 'index'], 'each apply ran once');
    t.same(applies(db), ['schema']);

    // Results reached the statuses (read from the cluster by the API).
    const agent = await waitFor(
      'statuses',
      () =>
        sys.get<{ agent: { tasks: { task: string; status: { outcome: string } | null }[] } }>(
          '/api/v1/agents/web-01',
        ),
      (a) => a.agent.tasks.find((x) => x.task === 'site')?.status?.outcome === 'applied',
      60_000,
    );
    t.ok(agent.agent.tasks.length > 0);
    const status = await sys.get<{ counts: { agents_connected: number } }>('/api/v1/status');
    t.equal(status.counts.agents_connected, 2);
  });

  t.test('a master failover while agents apply: no result lost, nothing applied twice', async (t) => {
    const prefix = `${cluster.prefix}-failover`;
    const keys = new Keys(prefix);
    const hosts = ['busy-1', 'busy-2', 'busy-3'].map((name) => ({ name, dir: sandbox(t) }));
    const files: Record<string, string> = {};
    // Each host its own task (the commands run a second, so results are in flight at the kill).
    for (const h of hosts)
      files[`${h.name}.fluke.hcl`] = countingTask(`work-${h.name}`, h.name, h.dir, ['a', 'b'], 1);
    const sys = await startSystem(t, { cluster: { ...cluster, prefix }, files });
    for (const h of hosts) await sys.startAgent(h.name, { role: h.name });

    // Work is going on: the first command has run somewhere.
    await waitFor('a first apply', async () => hosts.some((h) => applies(h.dir).length > 0), Boolean, 60_000);
    const resultsKey = `${keys.bullPrefix(QUEUE_NAMES.results)}:${QUEUE_NAMES.results}:id`;
    const before = hosts.reduce((n, h) => n + applies(h.dir).length, 0);
    const { killed, promoted } = await cluster.failover(resultsKey);
    t.ok(before < hosts.length * 2, `killed mid-work (${before} of ${hosts.length * 2} commands had run)`);
    t.not(killed.port, promoted.port, `the replica on ${promoted.port} took over from ${killed.port}`);

    // Every result recorded: each host's applied run is an event, and its status says applied.
    for (const h of hosts) {
      const task = `work-${h.name}`;
      await waitFor(
        `${h.name}: applied event`,
        () => sys.get<Events>(`/api/v1/events?agent=${h.name}&task=${task}`),
        (p) => runs(p.events, task).some((e) => e.outcome === 'applied'),
        90_000,
      );
      await waitFor(
        `${h.name}: status`,
        () =>
          sys.get<{ agent: { tasks: { task: string; status: { outcome: string } | null }[] } }>(
            `/api/v1/agents/${h.name}`,
          ),
        // A drift check after the apply found nothing to do: settled.
        (a) => a.agent.tasks.find((x) => x.task === task)?.status?.outcome === 'satisfied',
        90_000,
      );
    }
    for (const h of hosts) {
      t.ok(existsSync(join(h.dir, 'b')), `${h.name}: converged`);
      t.same(applies(h.dir), ['a', 'b'], `${h.name}: each command ran exactly once`);
    }
    // The killed node back (as the new master's replica) before the system stops: its clients
    // would otherwise spend their shutdown waiting for a node that is gone for good.
    await cluster.restart(killed.port);
  });
});
