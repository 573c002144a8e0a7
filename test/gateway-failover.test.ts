/**
 * kill -9 the gateway holding an agent while it runs a long step: the agent reconnects to a second
 * gateway (started on the same address, as a balancer would route it) and its result arrives
 * exactly once. Real gateway, reconciler and agent processes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';

t.test('gateway killed mid-step: result arrives once through the next gateway', async (t) => {
  const dir = sandbox(t);
  const sys = await startSystem(t, {
    files: {
      'long.fluke.hcl': `
task "long" {
  selector { match_labels = { role = "web" } }
  shell "deploy" {
    check   = "test -f ${dir}/done"
    command = "echo start >> ${dir}/starts; sleep 4; touch ${dir}/done"
  }
}
`,
    },
    inProcess: false,
  });
  sys.spawnRole('reconciler');
  const first = sys.spawnRole('gateway');
  await waitFor(
    'first gateway',
    async () => (await fetch(sys.url('/healthz'))).status,
    (s) => s === 200,
  );
  await sys.startAgent('web-01', { role: 'web' });
  await waitFor('step running', async () => existsSync(join(dir, 'starts')), Boolean, 60_000);
  const before = await sys.get<{ agents: { gateway_id: string }[] }>('/api/v1/agents');
  first.child.kill('SIGKILL');
  await first.exited;

  sys.spawnRole('gateway');
  const events = await waitFor(
    'the result, through the second gateway',
    () => sys.get<{ events: FlukeEvent[] }>('/api/v1/events?agent=web-01&task=long'),
    (p) => p.events.some((e) => e.kind === 'task_run' && e.outcome === 'applied'),
    60_000,
  );
  const after = await sys.get<{ agents: { gateway_id: string; connected: boolean }[] }>('/api/v1/agents');
  t.not(after.agents[0]?.gateway_id, before.agents[0]?.gateway_id, 'the agent is on the new gateway');
  t.equal(readFileSync(join(dir, 'starts'), 'utf8'), 'start\n', 'the step ran once');
  const applied = events.events.filter((e) => e.kind === 'task_run' && e.outcome === 'applied');
  t.equal(applied.length, 1, 'the result was recorded exactly once');
  t.notOk(
    events.events.some((e) => e.kind === 'timeout'),
    'no timeout: the agent said it was still running the instruction',
  );
});
