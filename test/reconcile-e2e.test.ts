/**
 * The core loop end to end: real Redis, real Git, the all-in-one server in-process and real
 * agent processes running real shell commands in temp dirs.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';
import { startHttpReceiver } from './helpers/http-receiver.js';

interface Events {
  events: FlukeEvent[];
}

const fileTask = (name: string, role: string, dir: string, steps: string[], extra = '') => `
task "${name}" {
  ${extra}
  selector { match_labels = { role = "${role}" } }
${steps
  .map(
    (s) => `  shell "${s}" {
    check   = "test -f ${dir}/${s}"
    command = "echo ${s} > ${dir}/${s}"
  }`,
  )
  .join('\n')}
}
`;

const runs = (events: FlukeEvent[], task: string) =>
  events.filter(
    (e): e is Extract<FlukeEvent, { kind: 'task_run' }> => e.kind === 'task_run' && e.task === task,
  );

t.test('a commit reaches matching agents only; drift is remediated step by step', async (t) => {
  const web = sandbox(t);
  const db = sandbox(t);
  const sys = await startSystem(t, {
    files: {
      'web.fluke.hcl': fileTask('site', 'web', web, ['index', 'config']),
      'db.fluke.hcl': fileTask('schema', 'db', db, ['schema']),
    },
  });
  await sys.startAgent('web-01', { role: 'web' });
  await sys.startAgent('db-01', { role: 'db' });

  await waitFor(
    'web files',
    async () => existsSync(join(web, 'index')) && existsSync(join(web, 'config')),
    Boolean,
  );
  await waitFor('db file', async () => existsSync(join(db, 'schema')), Boolean);
  t.notOk(existsSync(join(web, 'schema')), 'the web host never ran the db task');

  const first = await waitFor(
    'applied event',
    () => sys.get<Events>('/api/v1/events?agent=web-01'),
    (p) => runs(p.events, 'site').some((e) => e.outcome === 'applied'),
  );
  const applied = runs(first.events, 'site').find((e) => e.outcome === 'applied');
  t.match(applied, { agent: 'web-01', labels: { role: 'web' }, mode: 'apply' });
  t.same(
    applied?.steps.map((s) => [s.step, s.outcome]),
    [
      ['index', 'applied'],
      ['config', 'applied'],
    ],
  );
  t.ok(applied?.revision.match(/^[0-9a-f]{40}$/), 'the event names the revision');
  t.ok(applied?.execution_id, 'and the execution id');

  // Out-of-band change: only the drifted step is applied by the next drift check (or by the
  // reconcile of a re-registration, should a loaded machine delay heartbeats past the TTL).
  const deletedAt = new Date().toISOString();
  unlinkSync(join(web, 'config'));
  const isFix = (e: ReturnType<typeof runs>[number]) =>
    e.at >= deletedAt && e.outcome === 'applied' && (e.trigger === 'drift_check' || e.trigger === 'connect');
  const later = await waitFor(
    'drift remediation',
    () => sys.get<Events>('/api/v1/events?agent=web-01&task=site'),
    (p) => runs(p.events, 'site').some(isFix),
    60_000,
  );
  const fix = runs(later.events, 'site').find(isFix);
  t.same(
    fix?.steps.map((s) => [s.step, s.outcome]),
    [
      ['index', 'satisfied'],
      ['config', 'applied'],
    ],
  );
  t.ok(existsSync(join(web, 'config')));

  const agents = await sys.get<{ agents: { name: string; connected: boolean }[] }>('/api/v1/agents');
  t.same(agents.agents.map((a) => [a.name, a.connected]).sort(), [
    ['db-01', true],
    ['web-01', true],
  ]);
  const status = await sys.get<{ revision: string; counts: { agents_connected: number } }>('/api/v1/status');
  t.equal(status.counts.agents_connected, 2);
});

t.test('alert_only alerts once and applies only on a manual reconcile', async (t) => {
  const host = sandbox(t);
  const receiver = await startHttpReceiver();
  t.teardown(() => receiver.close());
  const sys = await startSystem(t, {
    files: {
      'certs.fluke.hcl': fileTask('certs', 'web', host, ['renew'], 'drift { policy = "alert_only" }'),
    },
    alertWebhook: `${receiver.url}/hook`,
  });
  await sys.startAgent('web-01', { role: 'web', env: 'production' });
  const [alert] = await receiver.waitForRequests(1, 60_000);
  const body = JSON.parse(alert?.body.toString() ?? '{}');
  t.match(body, {
    event: 'drift_detected',
    agent: { name: 'web-01', labels: { role: 'web', env: 'production' } },
    task: 'certs',
    policy: 'alert_only',
    remediation_status: 'pending_manual',
    drifted_steps: ['renew'],
  });
  t.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  // Several drift checks later: still drifted, still one alert, nothing applied. Finding the same
  // drift again is a quiet check: the status moves to each new execution, no event is added.
  const checks = new Set<string>();
  await waitFor(
    'repeated checks',
    async () => {
      const a = await sys.get<{
        agent: { tasks: { task: string; status: { execution_id: string; outcome: string } | null }[] };
      }>('/api/v1/agents/web-01');
      const status = a.agent.tasks.find((x) => x.task === 'certs')?.status;
      if (status?.outcome === 'drifted') checks.add(status.execution_id);
      return checks.size;
    },
    (n) => n >= 3,
    60_000,
  );
  t.equal(receiver.requests.length, 1, 'one alert per drift episode');
  const recorded = await sys.get<Events>('/api/v1/events?agent=web-01&task=certs');
  t.equal(
    runs(recorded.events, 'certs').filter((e) => e.outcome === 'drifted').length,
    1,
    'the same drift found again records no new event',
  );
  t.notOk(existsSync(join(host, 'renew')), 'alert_only never applies by itself');
  const drift = await sys.get<{ drift: { agent: string; task: string; outcome: string }[] }>('/api/v1/drift');
  t.match(drift.drift, [{ agent: 'web-01', task: 'certs', outcome: 'drifted' }]);

  const refused = await sys.post('/api/v1/reconcile', { target: 'task', name: 'certs' }, null);
  t.equal(refused.status, 401, 'reconcile needs an API token');
  const res = await sys.post('/api/v1/reconcile', { target: 'task', name: 'certs' });
  t.equal(res.status, 202);
  const id = (res.json as { id: string }).id;
  const progress = await waitFor(
    'manual run done',
    () => sys.get<{ done: boolean; summary: { succeeded: number } }>(`/api/v1/reconcile/${id}`),
    (p) => p.done,
  );
  t.equal(progress.summary.succeeded, 1);
  t.ok(existsSync(join(host, 'renew')), 'a manual reconcile applies alert_only tasks');
  const [, remediated] = await receiver.waitForRequests(2, 60_000);
  t.match(JSON.parse(remediated?.body.toString() ?? '{}'), {
    event: 'drift_remediated',
    remediation_status: 'remediated',
  });
});

t.test('remediate_and_alert sends both alerts in order; a down receiver is retried', async (t) => {
  const host = sandbox(t);
  const receiver = await startHttpReceiver();
  t.teardown(() => receiver.close());
  receiver.failNext(2, 503);
  const sys = await startSystem(t, {
    files: { 'app.fluke.hcl': fileTask('app', 'web', host, ['conf']) },
    policy: 'remediate_and_alert',
    alertWebhook: `${receiver.url}/hook`,
  });
  await sys.startAgent('web-01', { role: 'web' });
  // Remediation is not blocked by the failing receiver.
  await waitFor('applied', async () => existsSync(join(host, 'conf')), Boolean);
  const requests = await receiver.waitForRequests(4, 60_000);
  const delivered = requests.filter((r) => r.status === 200).map((r) => JSON.parse(r.body.toString()).event);
  t.same(delivered, ['drift_detected', 'drift_remediated']);
  t.equal(requests[0]?.status, 503, 'the first attempts failed and were retried');
});

t.test('a bad commit keeps the last good state and shows the error; the fix recovers', async (t) => {
  const host = sandbox(t);
  const sys = await startSystem(t, { files: { 'a.fluke.hcl': fileTask('one', 'web', host, ['a']) } });
  await sys.startAgent('web-01', { role: 'web' });
  const good = await waitFor(
    'first revision',
    () => sys.get<{ revision: string | null }>('/api/v1/status'),
    (s) => s.revision !== null,
  );
  await sys.repo.commit({
    'b.fluke.hcl': 'task "broken" {\n  selector {}\n  shell "x" { command = "true" }\n}\n',
  });
  const bad = await waitFor(
    'error shown',
    () =>
      sys.get<{
        revision: string;
        last_error: { message: string; diagnostics: { file: string; line: number }[] } | null;
      }>('/api/v1/status'),
    (s) => s.last_error !== null,
  );
  t.equal(bad.revision, good.revision, 'the last good state stays in force');
  t.match(bad.last_error?.diagnostics[0], { file: 'b.fluke.hcl', line: 3 });
  t.match(bad.last_error?.message, /b\.fluke\.hcl:3/);
  const tasks = await sys.get<{ tasks: { name: string }[] }>('/api/v1/tasks');
  t.same(
    tasks.tasks.map((x) => x.name),
    ['one'],
  );

  const fixed = await sys.repo.commit({
    'b.fluke.hcl': `task "two" {\n  selector { match_labels = { role = "web" } }\n  shell "b" {\n    check = "test -f ${host}/b"\n    command = "touch ${host}/b"\n  }\n}\n`,
  });
  await waitFor(
    'recovered',
    () => sys.get<{ revision: string; last_error: unknown }>('/api/v1/status'),
    (s) => s.revision === fixed && s.last_error === null,
  );
  await waitFor('new task applied', async () => existsSync(join(host, 'b')), Boolean);
});
