/**
 * POST /api/v1/webhooks/git: GitHub signatures and GitLab tokens checked, only pushes to the
 * tracked branch ask for a poll, and such a poll really brings in the new commit.
 */
import { createHmac } from 'node:crypto';
import pino from 'pino';
import t from 'tap';
import { startServices } from '../bin/services.js';
import { startSystem, waitFor } from '../testkit/system.js';
import { startApiServer } from './helpers/api-server.js';

const SECRET = 'webhook-secret-for-tests';
const SHA = 'a'.repeat(40);

const pushBody = (branch: string, after = SHA) =>
  JSON.stringify({ ref: `refs/heads/${branch}`, before: '0'.repeat(40), after, commits: [] });

function github(body: string, opts: { event?: string; secret?: string; type?: string } = {}) {
  const sig = createHmac('sha256', opts.secret ?? SECRET)
    .update(body)
    .digest('hex');
  return {
    method: 'POST',
    headers: {
      'content-type': opts.type ?? 'application/json',
      'x-github-event': opts.event ?? 'push',
      'x-hub-signature-256': `sha256=${sig}`,
    },
    body,
  };
}

function gitlab(body: string, opts: { token?: string; event?: string } = {}) {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-gitlab-event': opts.event ?? 'Push Hook',
      'x-gitlab-token': opts.token ?? SECRET,
    },
    body,
  };
}

async function send(url: string, init: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, json: (await res.json()) as { triggered?: boolean; code?: string } };
}

t.test('the route: signatures, events, branches, content types', async (t) => {
  const api = await startApiServer(t, { webhookSecret: SECRET });
  const url = api.url('/api/v1/webhooks/git');
  const polls = async () => (await api.queues.poll.getJobs(['waiting', 'delayed'])).map((j) => j.id);

  let res = await send(url, github(pushBody('main')));
  t.same(res, { status: 202, json: { triggered: true } }, 'GitHub push to main');
  t.same(await polls(), [`push-${SHA}`], 'a poll is enqueued for the pushed commit');
  res = await send(url, github(pushBody('main')));
  t.same(res.json, { triggered: true }, 'a redelivery is accepted…');
  t.equal((await polls()).length, 1, '…and deduplicated');

  res = await send(url, github(pushBody('main'), { secret: 'wrong' }));
  t.equal(res.status, 401, 'a wrong secret');
  t.equal(res.json.code, 'bad_signature');
  const tampered = github(pushBody('main'));
  tampered.body = pushBody('main', 'b'.repeat(40));
  t.equal((await send(url, tampered)).status, 401, 'the signature covers the body');
  const unsigned = github(pushBody('main'));
  delete (unsigned.headers as Record<string, string>)['x-hub-signature-256'];
  t.equal((await send(url, unsigned)).status, 401, 'no signature');

  res = await send(url, github(pushBody('feature'), {}));
  t.equal(res.status, 202);
  t.equal(res.json.triggered, false, 'another branch');
  res = await send(url, github(JSON.stringify({ zen: 'hi', hook_id: 1 }), { event: 'ping' }));
  t.equal(res.json.triggered, false, 'ping');
  res = await send(url, github(JSON.stringify({ ref: 'refs/tags/v1', after: SHA }), {}));
  t.equal(res.json.triggered, false, 'a tag push');

  const form = `payload=${encodeURIComponent(pushBody('main'))}`;
  res = await send(url, github(form, { type: 'application/x-www-form-urlencoded' }));
  t.equal(res.status, 415, 'form-encoded GitHub hooks are refused');
  t.equal(res.json.code, 'unsupported_media_type');
  res = await send(url, github('{not json'));
  t.equal(res.status, 400);
  t.equal(res.json.code, 'bad_json');

  const other = 'c'.repeat(40);
  res = await send(url, gitlab(pushBody('main', other)));
  t.same(res, { status: 202, json: { triggered: true } }, 'GitLab push to main');
  t.ok((await polls()).includes(`push-${other}`));
  t.equal((await send(url, gitlab(pushBody('main'), { token: 'nope' }))).status, 401, 'GitLab bad token');
  res = await send(
    url,
    gitlab(JSON.stringify({ object_kind: 'tag_push', ref: 'refs/tags/v1', after: other }), {
      event: 'Tag Push Hook',
    }),
  );
  t.equal(res.json.triggered, false, 'GitLab tag push');

  res = await send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: pushBody('main'),
  });
  t.equal(res.status, 400, 'neither GitHub nor GitLab');
  const big = 'x'.repeat(200 * 1024);
  res = await send(url, github(JSON.stringify({ ref: 'refs/heads/main', after: SHA, filler: big })));
  t.equal(res.status, 202, 'a push payload over the 64 KiB API cap is still read');
});

t.test('without webhook_secret the route is off', async (t) => {
  const api = await startApiServer(t);
  const res = await send(api.url('/api/v1/webhooks/git'), github(pushBody('main')));
  t.equal(res.status, 404);
  t.equal(res.json.code, 'webhooks_disabled');
  t.same(await api.queues.poll.getJobs(['waiting', 'delayed']), []);
});

t.test('a signed push makes the server poll the new commit at once', async (t) => {
  const manifest = (n: number) => `
task "t${n}" {
  selector { match_labels = { role = "nobody" } }
  shell "s" {
    check   = "true"
    command = "true"
  }
}
`;
  const sys = await startSystem(t, {
    files: { 'a.fluke.hcl': manifest(1) },
    pollInterval: '1h',
    inProcess: false,
  });
  const config = { ...sys.config, git: { ...sys.config.git, webhook_secret: SECRET } };
  const services = await startServices(config, 'server', {
    dataDir: sys.dir,
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => services.close());
  type Status = { revision: string | null; task_count: number };
  const first = await waitFor(
    'the first poll',
    () => sys.get<Status>('/api/v1/status'),
    (s) => s.revision !== null,
  );
  const next = await sys.repo.commit({ 'b.fluke.hcl': manifest(2) });
  t.not(first.revision, next);
  const res = await send(sys.url('/api/v1/webhooks/git'), github(pushBody('main', next)));
  t.same(res.json, { triggered: true });
  const after = await waitFor(
    'the pushed commit',
    () => sys.get<Status>('/api/v1/status'),
    (s) => s.revision === next,
    30_000,
  );
  t.equal(after.task_count, 2, 'its manifests are compiled and in force');
});
