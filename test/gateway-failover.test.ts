/**
 * kill -9 the gateway holding an agent while it runs a long step: the agent reconnects to a second
 * gateway on the same address (as behind a balancer) and its result arrives exactly once. Real
 * gateway, reconciler and agent processes.
 *
 * Nothing here races the clock, so a loaded machine only makes it slower:
 * - The second gateway is up before the first dies (uWS listens with SO_REUSEPORT): the outage is
 *   one reconnect, not a process start plus the agent's growing backoff, which under load outlasted
 *   the ~10-15 s a silent agent gets before its work times out.
 * - The step runs until the test releases it, after the deadline has checked the instruction
 *   MISSES_ALLOWED times with the agent back: had the agent not said it was still running it,
 *   those checks would have timed it out.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import t from 'tap';
import { MISSES_ALLOWED } from '../reconciler/handlers/deadline.js';
import type { FlukeEvent } from '../shared/events.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { Keys } from '../shared/keys.js';
import { decodeRegistryEntry } from '../shared/registry-entry.js';
import { freePort } from '../testkit/redis.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';

/** Generous: process starts and reconnects take many seconds on a loaded machine. */
const SLOW_MS = 120_000;

interface DeadlineData {
  instruction_id?: string;
  checks?: Array<{ instruction_id: string }>;
}

t.test('gateway killed mid-step: result arrives once through the next gateway', async (t) => {
  const dir = sandbox(t);
  const sys = await startSystem(t, {
    files: {
      'long.fluke.hcl': `
task "long" {
  selector { match_labels = { role = "web" } }
  shell "deploy" {
    check   = "test -f ${dir}/done"
    command = "echo start >> ${dir}/starts; while [ ! -f ${dir}/release ]; do sleep 0.1; done; touch ${dir}/done"
  }
}
`,
    },
    inProcess: false,
  });
  const keys = new Keys(sys.redis.prefix);
  const redis = sys.redis.client();
  const reconcile = new Queue(QUEUE_NAMES.reconcile, {
    connection: redis,
    prefix: keys.bullPrefix(QUEUE_NAMES.reconcile),
  });
  t.teardown(() => reconcile.close());
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
  // The step waits for the release, so the agent's own command timeout must not end it first.
  await sys.startAgent('web-01', { role: 'web' }, { commandTimeout: '10m' });
  await waitFor('step running', async () => existsSync(join(dir, 'starts')), Boolean, SLOW_MS);

  // Same agents port, its own console port: the test can tell when it is up.
  const httpPort2 = await freePort();
  sys.spawnRole('gateway', { httpPort: httpPort2 });
  const base2 = `http://127.0.0.1:${httpPort2}`;
  const get = async <T>(path: string): Promise<T> => (await (await fetch(`${base2}${path}`)).json()) as T;
  await healthy(base2);

  const before = await get<{ agents: { gateway_id: string }[] }>('/api/v1/agents');
  first.child.kill('SIGKILL');
  await first.exited;

  const back = await waitFor(
    'the agent registered on the second gateway, running the instruction',
    async () => decodeRegistryEntry(await redis.hgetall(keys.agent('web-01'))),
    (e) => e !== null && e.gateway_id !== before.agents[0]?.gateway_id && e.running.length === 1,
    SLOW_MS,
  );
  const backAt = Date.now();
  const instructionId = back?.running[0] ?? '';
  const timedOut = (events: FlukeEvent[]) =>
    events.some((e) => e.kind === 'timeout' && e.instruction_id === instructionId);
  const eventsOf = () => get<{ events: FlukeEvent[] }>('/api/v1/events?agent=web-01&task=long');

  // Picked up after the agent was back, so each of them read the new registry entry.
  const checksSinceBack = async () => {
    const jobs = await reconcile.getJobs(['completed'], 0, -1);
    return jobs.filter((j) => {
      if ((j.processedOn ?? 0) < backAt) return false;
      const data = j.data as DeadlineData;
      if (j.name === 'deadline') return data.instruction_id === instructionId;
      return j.name === 'deadlines' && (data.checks ?? []).some((c) => c.instruction_id === instructionId);
    }).length;
  };
  await waitFor(
    `${MISSES_ALLOWED} deadline checks of ${instructionId} (or its timeout)`,
    async () => ({ checks: await checksSinceBack(), timedOut: timedOut((await eventsOf()).events) }),
    (p) => p.checks >= MISSES_ALLOWED || p.timedOut,
    SLOW_MS,
  );
  writeFileSync(join(dir, 'release'), '');

  const events = await waitFor(
    'the result, through the second gateway',
    eventsOf,
    (p) => p.events.some((e) => e.kind === 'task_run' && e.outcome === 'applied'),
    SLOW_MS,
  );
  const after = await get<{ agents: { gateway_id: string; connected: boolean }[] }>('/api/v1/agents');
  t.not(after.agents[0]?.gateway_id, before.agents[0]?.gateway_id, 'the agent is on the new gateway');
  t.equal(readFileSync(join(dir, 'starts'), 'utf8'), 'start\n', 'the step ran once');
  const applied = events.events.filter(
    (e): e is Extract<FlukeEvent, { kind: 'task_run' }> => e.kind === 'task_run' && e.outcome === 'applied',
  );
  t.equal(applied.length, 1, 'the result was recorded exactly once');
  t.equal(applied[0]?.instruction_id, instructionId, 'it is the result of the instruction it was running');
  // Only this instruction: a drift check sent to the killed gateway's inbox never reached the
  // agent, and timing that one out is right.
  t.notOk(timedOut(events.events), 'no timeout: the agent said it was still running the instruction');
});
