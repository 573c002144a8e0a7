/**
 * Git is enough, end to end on real parts (real Redis, a real git repository, a real agent process
 * running real commands): a good commit is applied, a bad head is pushed, Redis is flushed. The
 * reconciler rebuilds the desired state from Git alone by walking back past the bad head, the
 * status still names the bad head with file:line, and a drift on the host is remediated within
 * one poll interval (plus headroom for a loaded machine) with the recovered state.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';

interface Status {
  revision: string | null;
  last_seen_revision: string | null;
  last_error: {
    revision: string | null;
    message: string;
    diagnostics: { file: string; line: number }[];
  } | null;
}

const POLL_MS = 3000;
/** On a loaded 2-core machine a tick, a job hop and an agent round trip can each take seconds. */
const HEADROOM_MS = 12_000;

const conf = (dir: string, value: string) => `task "conf" {
  selector { match_labels = { role = "web" } }
  shell "conf" {
    check   = "grep -qx ${value} ${dir}/conf"
    command = "echo ${value} > ${dir}/conf"
  }
}
`;

t.test('bad head + FLUSHALL: state rebuilt from Git alone, drift remediated with it', async (t) => {
  const dir = sandbox(t);
  const logs: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString());
        done();
      },
    }),
  );
  const sys = await startSystem(t, {
    files: { 'conf.fluke.hcl': conf(dir, 'v1') },
    pollInterval: `${POLL_MS / 1000}s`,
    heartbeat: '500ms',
    logger,
  });
  const status = () => sys.get<Status>('/api/v1/status');
  const confText = () => readFileSync(join(dir, 'conf'), 'utf8');
  await sys.startAgent('web-01', { role: 'web' });
  await waitFor(
    'the good commit applied',
    async () => confText(),
    (s) => s === 'v1\n',
  );
  const good = (await waitFor('the good revision', status, (s) => s.revision !== null)).revision as string;

  // Two bad commits on top: the first would change the file, the head breaks it further.
  const broken = conf(dir, 'v2').replace('  shell "conf" {', '  owner = "me"\n  shell "conf" {');
  await sys.repo.commit({ 'conf.fluke.hcl': broken });
  const bad = await sys.repo.commit({ 'conf.fluke.hcl': broken, 'README.md': 'notes' });
  await waitFor('the bad head seen', status, (s) => s.last_error?.revision === bad);
  t.equal((await status()).revision, good, 'before the flush the last good state is in Redis');

  const admin = sys.redis.client();
  t.teardown(() => admin.quit());
  const flushedAt = Date.now();
  await admin.flushall();

  const recovered = await waitFor(
    'the state rebuilt from Git',
    status,
    (s) => s.revision === good && s.last_error?.revision === bad,
    POLL_MS + HEADROOM_MS,
  );
  const rebuiltMs = Date.now() - flushedAt;
  t.equal(recovered.last_seen_revision, bad);
  t.match(recovered.last_error?.diagnostics, [{ file: 'conf.fluke.hcl', line: 3 }]);
  t.match(
    recovered.last_error?.message,
    new RegExp(
      `in commit ${bad.slice(0, 12)}; first: conf\\.fluke\\.hcl:3: .*owner.*; desired state recovered from ${good.slice(0, 12)} \\(2 commits back`,
    ),
    'the status reports the bad head with file:line, and what is in force',
  );
  t.ok(
    logs.some((l) =>
      l.includes(
        `desired state recovered from ${good.slice(0, 12)} (head ${bad.slice(0, 12)} does not compile)`,
      ),
    ),
    'a log line names both commits',
  );

  // The recovery fans out like a new good commit: the agent is checked against the old state.
  const events = () => sys.get<{ events: FlukeEvent[] }>('/api/v1/events?agent=web-01&task=conf');
  await waitFor('the check after the flush', events, (p) => p.events.some((e) => e.kind === 'task_run'));
  const checkedMs = Date.now() - flushedAt;

  writeFileSync(join(dir, 'conf'), 'tampered\n');
  const driftAt = Date.now();
  await waitFor(
    'the drift remediated',
    async () => confText(),
    (s) => s === 'v1\n',
    POLL_MS + HEADROOM_MS,
  );
  const remediatedMs = Date.now() - driftAt;
  const applied = await waitFor('the drift event', events, (p) =>
    p.events.some((e) => e.kind === 'task_run' && e.trigger === 'drift_check' && e.outcome === 'applied'),
  );
  t.match(
    applied.events.find(
      (e) => e.kind === 'task_run' && e.trigger === 'drift_check' && e.outcome === 'applied',
    ),
    { revision: good, trigger: 'drift_check' },
    'the drift tick applied the recovered state',
  );
  t.equal((await status()).revision, good, 'the bad head never became the state');
  t.comment(
    `poll ${POLL_MS} ms: state rebuilt ${rebuiltMs} ms after FLUSHALL, agent checked after ${checkedMs} ms, drift remediated ${remediatedMs} ms after the change`,
  );
});
