/**
 * Gateway lifecycle on a real Redis with real sockets: register, heartbeat, TTL expiry after a
 * silent death, replacement (same and other gateway), drain, registry rebuild after FLUSHALL.
 */
import { once } from 'node:events';
import t from 'tap';
import { uwsImplementation } from '../gateway/uws.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { CloseCode } from '../shared/protocol.js';
import { decodeRegistryEntry } from '../shared/registry-entry.js';
import { startRedis } from '../testkit/redis.js';
import { eventually, startGateway, TestAgent } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const gw = await startGateway(r, { gatewayId: 'gw-a' });
t.teardown(() => gw.stop());
const redis = r.client();
const entryOf = async (name: string) => decodeRegistryEntry(await redis.hgetall(gw.keys.agent(name)));

t.test('logs which uWebSockets.js implementation loaded', async (t) => {
  t.equal(uwsImplementation(), 'native');
  t.ok(gw.logs.some((l) => l.msg === 'uWebSockets.js implementation loaded' && l.uws === 'native'));
});

t.test('register writes the registry entry, index and a connect reconcile', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  const reg = await agent.register('web-01', { role: 'web', env: 'prod' });
  t.equal(reg.gateway_id, 'gw-a');
  t.equal(reg.heartbeat_interval_ms, 200);
  const entry = await entryOf('web-01');
  t.match(entry, {
    name: 'web-01',
    labels: { role: 'web', env: 'prod' },
    gateway_id: 'gw-a',
    session_id: reg.session_id,
    agent_version: 'test',
    executors: ['shell'],
  });
  const ttl = await redis.pttl(gw.keys.agent('web-01'));
  t.ok(ttl > 0 && ttl <= 600, `TTL is 3x heartbeat (${ttl}ms)`);
  t.not(await redis.zscore(gw.keys.agentIndex(), 'web-01'), null);
  t.not(await redis.zscore(gw.keys.knownAgents(), 'web-01'), null);
  t.same(
    JSON.parse((await redis.hget(gw.keys.knownLabels(), 'web-01')) ?? 'null'),
    { role: 'web', env: 'prod' },
    'labels remembered beside the known index',
  );
  const jobs = await redis.keys(`${gw.keys.bullPrefix(QUEUE_NAMES.reconcile)}:${QUEUE_NAMES.reconcile}:*`);
  t.ok(jobs.length > 0, 'reconcile queue has keys');
  const { Queue } = await import('bullmq');
  const q = new Queue(QUEUE_NAMES.reconcile, {
    connection: r.client(),
    prefix: gw.keys.bullPrefix(QUEUE_NAMES.reconcile),
  });
  t.teardown(() => q.close());
  // Connect checks leave coalesced (gateway/connect-checks.ts): one `agents` job per window.
  const connectJobs = async () =>
    (await q.getJobs(['waiting', 'prioritized', 'delayed'])).filter(
      (j) => j.name === 'agents' && j.data.trigger === 'connect',
    );
  const holding = (jobs: Awaited<ReturnType<typeof connectJobs>>, name: string) =>
    jobs.filter((j) => (j.data.agents as string[]).includes(name));
  const first = await eventually(connectJobs, (js) => holding(js, 'web-01').length > 0);
  t.match(holding(first, 'web-01')[0]?.data, { trigger: 'connect', run_id: null, tasks: null });

  // A reconnect storm: agents registering together get their connect checks in shared jobs, each
  // agent once, instead of one job per agent.
  const names = Array.from({ length: 20 }, (_, i) => `storm-${String(i).padStart(2, '0')}`);
  const storm = names.map(() => new TestAgent(gw.url));
  t.teardown(() => Promise.all(storm.map((a) => a.close())));
  await Promise.all(storm.map((a, i) => a.register(names[i] ?? '')));
  const all = await eventually(connectJobs, (js) => names.every((n) => holding(js, n).length > 0));
  const stormJobs = all.filter((j) => names.some((n) => (j.data.agents as string[]).includes(n)));
  t.ok(stormJobs.length < names.length, `${names.length} connect checks in ${stormJobs.length} jobs`);
  for (const n of names) t.equal(holding(all, n).length, 1, `${n} checked once`);
});

t.test('heartbeats renew the TTL; silence lets it expire and closes the socket', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  await agent.register('silent-01');
  const key = gw.keys.agent('silent-01');
  const before = Number((await entryOf('silent-01'))?.last_seen);
  // Heartbeat for longer than one TTL: the entry must survive.
  for (let i = 0; i < 8; i++) {
    agent.heartbeat();
    await new Promise((res) => setTimeout(res, 100));
  }
  t.equal(await redis.exists(key), 1, 'alive after 800ms of heartbeats (TTL 600ms)');
  const renewed = await entryOf('silent-01');
  t.ok(Number(renewed?.last_seen) > before, 'last_seen moved');
  // Silent death: stop heartbeating and stop reading (no FIN reaches the gateway).
  agent.ws.pause();
  const gone = Date.now();
  await eventually(
    () => redis.exists(key),
    (n) => n === 0,
  );
  t.ok(Date.now() - gone < 2000, 'entry expired by TTL');
  agent.ws.resume();
  const closed = await agent.closed;
  t.equal(closed.code, CloseCode.slow, 'gateway closed the silent socket');
});

t.test('a newer session replaces the older one on the same gateway', async (t) => {
  const a1 = new TestAgent(gw.url);
  const a2 = new TestAgent(gw.url);
  t.teardown(() => Promise.all([a1.close(), a2.close()]));
  const r1 = await a1.register('dup-01');
  const oldClosed = a1.closed;
  const r2 = await a2.register('dup-01');
  t.not(r1.session_id, r2.session_id);
  const c = await oldClosed;
  t.equal(c.code, CloseCode.replaced);
  t.match(c.reason, /replaced/);
  // The old session's close must not delete the new session's entry.
  const entry = await eventually(
    () => entryOf('dup-01'),
    (e) => e !== null,
  );
  t.equal(entry?.session_id, r2.session_id);
  a2.heartbeat();
  a2.heartbeat();
  t.equal((await entryOf('dup-01'))?.session_id, r2.session_id, 'still the new session');
});

t.test('a newer session on another gateway kicks the old one', async (t) => {
  const gwB = await startGateway(r, { gatewayId: 'gw-b' });
  t.teardown(() => gwB.stop());
  const a1 = new TestAgent(gw.url);
  const a2 = new TestAgent(gwB.url);
  t.teardown(() => Promise.all([a1.close(), a2.close()]));
  await a1.register('roam-01');
  const closedOnA = once(gw.gateway.events, 'agent:closed');
  const r2 = await a2.register('roam-01');
  const c = await a1.closed;
  t.equal(c.code, CloseCode.replaced);
  t.match(c.reason, /gw-b/);
  await closedOnA;
  const entry = await entryOf('roam-01');
  t.equal(entry?.gateway_id, 'gw-b');
  t.equal(entry?.session_id, r2.session_id, 'old close did not delete the new entry');
});

t.test('registry entries are rebuilt on the next heartbeat after FLUSHALL', async (t) => {
  const agent = new TestAgent(gw.url);
  t.teardown(() => agent.close());
  const reg = await agent.register('flush-01', { zone: 'a' });
  await redis.flushall();
  const rebuilt = once(gw.gateway.events, 'registry:rebuilt');
  agent.heartbeat();
  await rebuilt;
  const entry = await entryOf('flush-01');
  t.match(entry, { name: 'flush-01', labels: { zone: 'a' }, session_id: reg.session_id, gateway_id: 'gw-a' });
  t.ok((await redis.pttl(gw.keys.agent('flush-01'))) > 0, 'with a TTL');
  t.not(await redis.zscore(gw.keys.agentIndex(), 'flush-01'), null, 'back in the index');
  t.not(await redis.zscore(gw.keys.knownAgents(), 'flush-01'), null, 'known again');
  t.equal(await redis.hget(gw.keys.knownLabels(), 'flush-01'), '{"zone":"a"}', 'labels remembered again');
});

t.test(
  'after FLUSHALL a gateway announces itself again with the first rebuilt entry, not at its next sweep',
  async (t) => {
    // A sweep (and its announce) only once a minute: the announce that follows must come from the rebuild.
    const gwS = await startGateway(r, { gatewayId: 'gw-slow', config: { heartbeat_interval_ms: 60_000 } });
    const agent = new TestAgent(gwS.url);
    t.teardown(async () => {
      await agent.close();
      await gwS.stop();
    });
    await agent.register('flush-announce-01');
    await redis.flushall();
    t.equal(await redis.hget(gw.keys.gateways(), 'gw-slow'), null, 'the gateways hash is gone');
    const rebuilt = once(gwS.gateway.events, 'registry:rebuilt');
    agent.heartbeat();
    await rebuilt;
    // Otherwise the connect reconcile of the rebuilt entry would find the gateway gone (undeliverable).
    const seen = await eventually(
      () => redis.hget(gw.keys.gateways(), 'gw-slow'),
      (v) => v !== null,
      15_000,
    );
    t.ok(Number(seen) > 0, 'announced again');
  },
);

t.test('gateways announce themselves', async (t) => {
  const seen = await eventually(
    () => redis.hget(gw.keys.gateways(), 'gw-a'),
    (v) => v !== null,
  );
  t.ok(Number(seen) > 0);
});

t.test('drain closes agents with 1001 and clears their registry entries', async (t) => {
  const gwC = await startGateway(r, { gatewayId: 'gw-c' });
  const agents = [new TestAgent(gwC.url), new TestAgent(gwC.url), new TestAgent(gwC.url)];
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  await Promise.all(agents.map((a, i) => a.register(`drain-0${i}`)));
  for (let i = 0; i < 3; i++) t.equal(await redis.exists(gw.keys.agent(`drain-0${i}`)), 1);
  await gwC.gateway.drain();
  for (const a of agents) {
    const c = await a.closed;
    t.equal(c.code, CloseCode.goingAway);
    t.match(c.reason, /reconnect/);
  }
  for (let i = 0; i < 3; i++) {
    t.equal(await redis.exists(gw.keys.agent(`drain-0${i}`)), 0, `drain-0${i} deregistered`);
    t.equal(await redis.zscore(gw.keys.agentIndex(), `drain-0${i}`), null);
  }
  t.equal(await redis.hget(gw.keys.gateways(), 'gw-c'), null, 'gateway retired');
  // No longer listening.
  const late = new TestAgent(gwC.url);
  await t.rejects(late.opened);
});
