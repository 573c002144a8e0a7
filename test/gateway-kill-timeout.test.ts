/**
 * kill -9 the gateway an instruction was queued on before the agent got it: the agent reconnects
 * to a second gateway, whose connect check records a newer status; the queued instruction times
 * out later and must not overwrite that status (shared/judge.ts, a timeout superseded by a later
 * instruction). Real gateway, reconciler and agent processes.
 *
 * The first gateway is frozen (SIGSTOP) while the reconcile is dispatched, so the instruction is
 * certainly queued for it and never delivered; only then is it killed.
 */
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { Keys } from '../shared/keys.js';
import { decodeRegistryEntry } from '../shared/registry-entry.js';
import type { TaskStatus } from '../shared/status.js';
import { freePort } from '../testkit/redis.js';
import { API_TOKEN, startSystem, waitFor } from '../testkit/system.js';

/** Generous: process starts and reconnects take many seconds on a loaded machine. */
const SLOW_MS = 120_000;

interface Run {
  done: boolean;
  results: { agent: string; task: string; outcome: string; execution_id: string | null }[];
}

t.test('a timeout of an instruction queued on a dead gateway keeps the newer status', async (t) => {
  const sys = await startSystem(t, {
    files: {
      'ok.fluke.hcl': `
task "ok" {
  selector { match_labels = { role = "web" } }
  shell "s" {
    check   = "true"
    command = "true"
  }
}
`,
    },
    pollInterval: '600s',
    heartbeat: '1s',
    inProcess: false,
  });
  const keys = new Keys(sys.redis.prefix);
  const redis = sys.redis.client();
  const statusOf = async () => {
    const raw = await redis.hget(keys.taskStatus('web-01'), 'ok');
    return raw ? (JSON.parse(raw) as TaskStatus) : null;
  };
  const healthy = (base: string) =>
    waitFor(
      `${base} healthy`,
      async () => (await fetch(`${base}/healthz`)).status,
      (s) => s === 200,
      SLOW_MS,
    );

  sys.spawnRole('reconciler');
  const first = sys.spawnRole('gateway');
  await healthy(sys.url(''));
  await sys.startAgent('web-01', { role: 'web' });
  const initial = await waitFor('the connect check', statusOf, (s) => s !== null, SLOW_MS);
  const onFirst = decodeRegistryEntry(await redis.hgetall(keys.agent('web-01')));

  // Same agents port (SO_REUSEPORT), its own console port.
  const httpPort2 = await freePort();
  sys.spawnRole('gateway', { httpPort: httpPort2 });
  const base2 = `http://127.0.0.1:${httpPort2}`;
  await healthy(base2);

  first.child.kill('SIGSTOP');
  t.teardown(() => {
    first.child.kill('SIGKILL');
  });
  const posted = await fetch(`${base2}/api/v1/reconcile`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` },
    body: JSON.stringify({ target: 'agent', name: 'web-01' }),
  });
  t.equal(posted.status, 202);
  const { id } = (await posted.json()) as { id: string };
  const runOf = async () => (await (await fetch(`${base2}/api/v1/reconcile/${id}`)).json()) as Run;
  const queued = await waitFor(
    'the instruction queued for the frozen gateway',
    runOf,
    (r) => r.results.some((x) => x.execution_id !== null),
    SLOW_MS,
  );
  const stale = queued.results[0]?.execution_id ?? '';
  first.child.kill('SIGKILL');
  await first.exited;

  const newer = await waitFor(
    'the connect check through the second gateway',
    async () => ({
      entry: decodeRegistryEntry(await redis.hgetall(keys.agent('web-01'))),
      status: await statusOf(),
    }),
    (p) =>
      p.entry !== null &&
      p.entry.gateway_id !== onFirst?.gateway_id &&
      p.status !== null &&
      p.status.execution_id !== initial?.execution_id &&
      p.status.execution_id !== stale,
    SLOW_MS,
  );
  const run = await waitFor('the queued instruction timed out', runOf, (r) => r.done, SLOW_MS);
  t.match(run.results, [{ task: 'ok', outcome: 'timeout', execution_id: stale }], 'the run says timeout');

  const status = await statusOf();
  t.equal(status?.execution_id, newer.status?.execution_id, 'the newer status stands');
  t.equal(status?.outcome, 'satisfied');
  t.ok(status?.issued_at, 'it records when its instruction was created');
  const events = (await (await fetch(`${base2}/api/v1/events?agent=web-01&task=ok`)).json()) as {
    events: FlukeEvent[];
  };
  t.notOk(
    events.events.some((e) => e.kind === 'timeout'),
    'no timeout event: it would contradict the newer result',
  );
});
