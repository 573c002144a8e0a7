/**
 * Faults: split processes, a reconciler killed mid-apply, FLUSHALL, a Redis restart, an agent that
 * stops answering, and `--exit-when-idle`. Real processes throughout.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { freePort } from '../testkit/redis.js';
import { type ChildProcessHandle, sandbox, startSystem, waitFor } from '../testkit/system.js';

interface Events {
  events: FlukeEvent[];
}

const simpleTask = (name: string, dir: string, file: string) => `
task "${name}" {
  selector { match_labels = { role = "web" } }
  shell "${file}" {
    check   = "test -f ${dir}/${file}"
    command = "echo ${file} > ${dir}/${file}"
  }
}
`;

const taskRuns = (events: FlukeEvent[]) => events.filter((e) => e.kind === 'task_run');

/** Waits for a spawned gateway's HTTP port; on failure the error carries the process output. */
async function readyHttp(port: number, proc: ChildProcessHandle) {
  try {
    await waitFor(
      `http on ${port}`,
      async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status,
      (s) => s === 200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nprocess output:\n${proc.output()}`);
  }
}

t.test('split processes: two gateways, two reconcilers, agents on both', async (t) => {
  const dir = sandbox(t);
  const sys = await startSystem(t, { files: { 'a.fluke.hcl': simpleTask('a', dir, 'x') }, inProcess: false });
  const second = { agentsPort: await freePort(), httpPort: await freePort() };
  const g1 = sys.spawnRole('gateway');
  const g2 = sys.spawnRole('gateway', second);
  sys.spawnRole('reconciler');
  sys.spawnRole('reconciler');
  await readyHttp(sys.httpPort, g1);
  await readyHttp(second.httpPort, g2);
  const hosts = [sandbox(t), sandbox(t)];
  // Each agent's task writes into its own dir: same manifest, the label picks the dir.
  await sys.repo.commit({
    'a.fluke.hcl': hosts
      .map(
        (h, i) => `
task "t${i}" {
  selector { match_labels = { role = "web", n = "${i}" } }
  shell "f" {
    check   = "test -f ${h}/f"
    command = "touch ${h}/f"
  }
}`,
      )
      .join('\n'),
  });
  await sys.startAgent('a0', { role: 'web', n: '0' });
  await sys.startAgent('a1', { role: 'web', n: '1' }, { agentsPort: second.agentsPort });
  await waitFor('both applied', async () => hosts.every((h) => existsSync(join(h, 'f'))), Boolean, 60_000);
  const agents = await sys.get<{ agents: { name: string; gateway_id: string; connected: boolean }[] }>(
    '/api/v1/agents',
  );
  t.equal(agents.agents.length, 2);
  t.not(agents.agents[0]?.gateway_id, agents.agents[1]?.gateway_id, 'the agents are on different gateways');
  const viaSecond = (await fetch(`http://127.0.0.1:${second.httpPort}/api/v1/agents`).then((r) =>
    r.json(),
  )) as typeof agents;
  const summary = (p: typeof agents) => p.agents.map((a) => [a.name, a.gateway_id, a.connected]);
  t.same(summary(viaSecond), summary(agents), 'every gateway serves the same registry');
});

t.test('kill -9 a reconciler mid-apply: the apply runs once and one event is recorded', async (t) => {
  const dir = sandbox(t);
  const files = {
    'slow.fluke.hcl': `
task "slow" {
  selector { match_labels = { role = "web" } }
  shell "deploy" {
    check   = "test -f ${dir}/done"
    command = "echo start >> ${dir}/starts; sleep 3; touch ${dir}/done"
  }
}
`,
  };
  const sys = await startSystem(t, { files, inProcess: false });
  const gw = sys.spawnRole('gateway');
  const r1 = sys.spawnRole('reconciler');
  const r2 = sys.spawnRole('reconciler');
  await readyHttp(sys.httpPort, gw);
  await sys.startAgent('web-01', { role: 'web' });
  await waitFor('apply started', async () => existsSync(join(dir, 'starts')), Boolean, 60_000);
  r1.child.kill('SIGKILL');
  await r1.exited;
  await waitFor('apply finished', async () => existsSync(join(dir, 'done')), Boolean, 60_000);
  const events = await waitFor(
    'the applied event',
    () => sys.get<Events>('/api/v1/events?agent=web-01&task=slow'),
    (p) => taskRuns(p.events).some((e) => e.kind === 'task_run' && e.outcome === 'applied'),
    60_000,
  );
  t.equal(readFileSync(join(dir, 'starts'), 'utf8'), 'start\n', 'the apply ran exactly once');
  const applied = taskRuns(events.events).filter((e) => e.kind === 'task_run' && e.outcome === 'applied');
  t.equal(applied.length, 1, 'one event for the apply');
  t.notOk(
    events.events.some((e) => e.kind === 'timeout'),
    'no false timeout while the agent was still applying',
  );
  await r2.stop();
});

t.test('FLUSHALL and a Redis restart: the system rebuilds without restarting processes', async (t) => {
  const dir = sandbox(t);
  const sys = await startSystem(t, {
    files: { 'a.fluke.hcl': simpleTask('a', dir, 'x') },
    pollInterval: '2s',
    heartbeat: '500ms',
  });
  await sys.startAgent('web-01', { role: 'web' });
  await waitFor('applied', async () => existsSync(join(dir, 'x')), Boolean);
  const admin = sys.redis.client();

  await admin.flushall();
  // Registry back within a heartbeat or so; desired state back within one poll interval.
  await waitFor(
    'registry rebuilt',
    () => sys.get<{ agents: { name: string; connected: boolean }[] }>('/api/v1/agents'),
    (p) => p.agents.some((a) => a.name === 'web-01' && a.connected),
    5000,
  );
  await waitFor(
    'state rebuilt',
    () => sys.get<{ revision: string | null }>('/api/v1/status'),
    (s) => s.revision !== null,
    8000,
  );
  unlinkSync(join(dir, 'x'));
  await waitFor('drift loop rebuilt', async () => existsSync(join(dir, 'x')), Boolean, 15_000);

  await sys.redis.kill();
  await sys.redis.restart();
  await waitFor(
    'state after restart',
    () => sys.get<{ revision: string | null }>('/api/v1/status'),
    (s) => s.revision !== null,
    15_000,
  );
  unlinkSync(join(dir, 'x'));
  await waitFor('workers resumed', async () => existsSync(join(dir, 'x')), Boolean, 60_000);
  t.pass('recovered from FLUSHALL and from a restart');
});

t.test('an agent that stops answering gets a timeout event, not a hung job', async (t) => {
  const dir = sandbox(t);
  const sys = await startSystem(t, {
    files: {
      'a.fluke.hcl': `
task "hang" {
  selector { match_labels = { role = "web" } }
  shell "s" {
    check   = "test -f ${dir}/never"
    command = "touch ${dir}/started; sleep 20"
  }
}
`,
    },
    pollInterval: '60s',
    heartbeat: '1s',
  });
  const agent = await sys.startAgent('web-01', { role: 'web' });
  await waitFor('apply running', async () => existsSync(join(dir, 'started')), Boolean);
  agent.child.kill('SIGSTOP');
  t.teardown(() => {
    agent.child.kill('SIGCONT');
  });
  const events = await waitFor(
    'timeout event',
    () => sys.get<Events>('/api/v1/events?agent=web-01&task=hang'),
    (p) => p.events.some((e) => e.kind === 'timeout'),
    60_000,
  );
  t.match(
    events.events.find((e) => e.kind === 'timeout'),
    { agent: 'web-01', task: 'hang', outcome: 'timeout' },
  );
  const drift = await sys.get<{ drift: { task: string; outcome: string }[] }>('/api/v1/drift');
  t.match(drift.drift, [{ task: 'hang', outcome: 'timeout' }]);
});

t.test('fluke reconciler --exit-when-idle works the queues, then exits 0', async (t) => {
  const dir = sandbox(t);
  const sys = await startSystem(t, { files: { 'a.fluke.hcl': simpleTask('a', dir, 'x') }, inProcess: false });
  const gw = sys.spawnRole('gateway');
  await readyHttp(sys.httpPort, gw);
  await sys.startAgent('web-01', { role: 'web' });
  await waitFor(
    'registered',
    () => sys.get<{ agents: unknown[] }>('/api/v1/agents'),
    (p) => p.agents.length === 1,
  );
  // No reconciler is running: the connect reconcile waits in the queue for a job to take it.
  t.notOk(existsSync(join(dir, 'x')));
  const job = sys.spawnRole('reconciler', {}, ['--exit-when-idle']);
  t.equal(await job.exited, 0, job.output());
  await waitFor('applied', async () => existsSync(join(dir, 'x')), Boolean, 10_000);
  // Results that arrived after the first job exited are taken by the next one.
  const next = sys.spawnRole('reconciler', {}, ['--exit-when-idle']);
  t.equal(await next.exited, 0, next.output());
  const events = await sys.get<Events>('/api/v1/events?agent=web-01');
  t.ok(taskRuns(events.events).length >= 1, 'the result was recorded by a reconciler job');
});
