/**
 * Redis comes back as another server (a Sentinel failover, a restart) with the registry intact:
 * writes the old server acknowledged may be gone (a cycle's fan-out, instructions for this
 * gateway), and no entry needs rebuilding, so nothing else would re-check the agents. The gateway
 * sees the new run_id when its inbox reads again and re-checks every agent it holds.
 * Here the "other server" is the same one restarted from a snapshot: new run_id, same data.
 */
import { Queue } from 'bullmq';
import t from 'tap';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { startRedis } from '../testkit/redis.js';
import { eventually, startGateway, TestAgent } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
// A long heartbeat: the registry entries (TTL 3 × heartbeat) outlive the restart, so no rebuild.
const gw = await startGateway(r, { gatewayId: 'gw-switch', config: { heartbeat_interval_ms: 10_000 } });
t.teardown(() => gw.stop());
const redis = r.client();
const queue = new Queue(QUEUE_NAMES.reconcile, {
  connection: r.client(),
  prefix: gw.keys.bullPrefix(QUEUE_NAMES.reconcile),
});
t.teardown(() => queue.close());
const checksOf = async (name: string) =>
  (await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed'])).filter(
    (j) => j.name === 'agents' && j.data.trigger === 'connect' && (j.data.agents as string[]).includes(name),
  ).length;
const runId = async () => /run_id:(\w+)/.exec(await redis.info('server'))?.[1];

t.test('another Redis server with the registry intact: every agent here is checked again', async (t) => {
  const agents = [new TestAgent(gw.url), new TestAgent(gw.url)];
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  await agents[0]?.register('switch-01');
  await agents[1]?.register('switch-02');
  await eventually(
    async () => [await checksOf('switch-01'), await checksOf('switch-02')],
    (n) => n[0] === 1 && n[1] === 1,
  );
  const before = await runId();
  await redis.save();
  await r.kill();
  await r.restart();
  t.not(await runId(), before, 'another server (run_id)');
  t.not(await redis.exists(gw.keys.agent('switch-01')), 0, 'the registry entry survived: no rebuild');
  await eventually(
    async () => [await checksOf('switch-01'), await checksOf('switch-02')],
    (n) => n[0] === 2 && n[1] === 2,
    20_000,
    100,
  );
  t.pass('each agent got a second connect check');
  t.ok(
    gw.logs.some((l) => String(l.msg).startsWith('Redis is another server now')),
    'logged, naming why',
  );
});
