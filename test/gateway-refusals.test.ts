/**
 * Every refusal is clean: the right HTTP status or close code, the gateway stays up (another agent
 * registers right after), and the refused input writes NOTHING to Redis. The gateway keeps writing
 * on its own meanwhile (its announce; for agents of earlier tests, a deregister or a connect-check job
 * that lands after the FLUSHALL), so each write is attributed by what it names and only the gateway's
 * own and those of the agents this file registers on purpose are allowed.
 */
import t, { type Test } from 'tap';
import { CloseCode, PROTOCOL_VERSION } from '../shared/protocol.js';
import { startRedis } from '../testkit/redis.js';
import { registerMessage, startGateway, TestAgent, TOKEN } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const redis = r.client();
const gw = await startGateway(r, {
  gatewayId: 'gw-refuse',
  limits: { maxPayloadBytes: 64 * 1024 },
  scoped: [
    {
      id: 'staging',
      token: 'scoped-staging-token',
      allowed_labels: { env: ['staging'] },
      name_pattern: 'stg-*',
      require_labels: true,
    },
  ],
});
t.teardown(() => gw.stop());

/** The agents this file registers on purpose; no refusal uses these names. */
const BYSTANDERS = new Set(['healthy-01', 'stg-app-01', 'twice-01']);

/**
 * Every key (or set member, hash field, queued job) in Redis that neither the gateway's own
 * announce nor a bystander agent explains. BullMQ's per-queue bookkeeping (id counter, events,
 * wait list…) names no agent: it is explained when a bystander's job is in the same queue.
 */
async function unexplainedWrites(): Promise<string[]> {
  const out: string[] = [];
  const queues = new Map<string, { explained: boolean; bookkeeping: string[] }>();
  const bull = `{${gw.keys.prefix}:q:`; // every queue's own hash tag
  const sets = [gw.keys.agentIndex(), gw.keys.knownAgents()];
  for (const key of (await redis.keys('*')).sort()) {
    const agentKey = /\{a:([^}]+)\}/.exec(key)?.[1];
    // The gateway's own writes: its announce and its identity key (created at listen).
    if (key === gw.keys.gateways() || key === gw.keys.identityKey()) continue;
    if (agentKey !== undefined) {
      if (!BYSTANDERS.has(agentKey)) out.push(key);
    } else if (sets.includes(key) || key === gw.keys.knownLabels()) {
      const names = sets.includes(key) ? await redis.zrange(key, '0', '-1') : await redis.hkeys(key);
      out.push(...names.filter((n) => !BYSTANDERS.has(n)).map((n) => `${key} → ${n}`));
    } else if (key.startsWith(bull)) {
      const [queue = '', ...rest] = key.slice(key.indexOf('}:') + 2).split(':');
      const id = rest.join(':');
      const q = queues.get(queue) ?? { explained: false, bookkeeping: [] };
      queues.set(queue, q);
      if (/^\d+$/.test(id)) {
        const [name, data] = await redis.hmget(key, 'name', 'data');
        const job = JSON.parse(data ?? '{}') as { agent?: unknown; agents?: unknown };
        // A connect check names its agents (gateway/connect-checks.ts): all must be bystanders.
        const named = Array.isArray(job.agents) ? job.agents : [job.agent];
        if (named.length > 0 && named.every((a) => typeof a === 'string' && BYSTANDERS.has(a)))
          q.explained = true;
        else out.push(`${key} (job ${name}: ${data})`);
      } else if (id === 'meta') {
      } else if (id.startsWith('de:')) {
        if (!BYSTANDERS.has(id.slice(id.indexOf('~') + 1))) out.push(key);
      } else q.bookkeeping.push(key);
    } else out.push(key);
  }
  for (const q of queues.values()) if (!q.explained) out.push(...q.bookkeeping);
  return out;
}

/** A refusal test: clean Redis before; after, nothing written and the gateway still serves. */
function refusal(name: string, body: (t: Test) => Promise<void>): void {
  t.test(name, async (t) => {
    await redis.flushall();
    await body(t);
    t.same(await unexplainedWrites(), [], 'nothing written to Redis by the refused input');
    const ok = new TestAgent(gw.url);
    t.ok((await ok.register('healthy-01')).session_id, 'a second agent still registers');
    await ok.close();
    await redis.flushall();
  });
}

refusal('no token: HTTP 401 with a JSON body', async (t) => {
  const a = new TestAgent(gw.url, { token: null });
  const res = await a.httpStatus;
  t.equal(res?.status, 401);
  t.same(JSON.parse(res?.body ?? '{}'), { error: 'missing bearer token', code: 'unauthorized' });
  await a.closed;
});

refusal('wrong token: HTTP 401', async (t) => {
  for (const token of ['nope', `${TOKEN}x`, TOKEN.slice(0, -1), '']) {
    const a = new TestAgent(gw.url, { token });
    const res = await a.httpStatus;
    t.equal(res?.status, 401, `token ${JSON.stringify(token)}`);
    await a.closed;
  }
  const basic = new TestAgent(gw.url, { token: null, headers: { authorization: `Basic ${TOKEN}` } });
  t.equal((await basic.httpStatus)?.status, 401, 'not a bearer token');
  await basic.closed;
});

refusal('scoped token: disallowed label is refused with a reason and 4403', async (t) => {
  const a = new TestAgent(gw.url, { token: 'scoped-staging-token' });
  await a.opened;
  a.send(registerMessage('stg-web-01', { env: 'production' }));
  const refused = await a.next('refused');
  t.match(refused.reason, /env=production/);
  t.match(refused.reason, /staging/);
  const c = await a.closed;
  t.equal(c.code, CloseCode.refused);
});

refusal('scoped token: disallowed name is refused', async (t) => {
  const a = new TestAgent(gw.url, { token: 'scoped-staging-token' });
  await a.opened;
  a.send(registerMessage('prod-web-01', { env: 'staging' }));
  t.match((await a.next('refused')).reason, /name "prod-web-01"/);
  t.equal((await a.closed).code, CloseCode.refused);
});

t.test('scoped token within scope registers', async (t) => {
  const a = new TestAgent(gw.url, { token: 'scoped-staging-token' });
  t.ok((await a.register('stg-app-01', { env: 'staging', role: 'web' })).session_id);
  await a.close();
  await redis.flushall();
});

refusal('unsupported protocol version is refused', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send({ ...registerMessage('v-01'), v: PROTOCOL_VERSION + 1 });
  t.match((await a.next('refused')).reason, /protocol version/);
  t.equal((await a.closed).code, CloseCode.refused);
});

refusal('oversized frame closes with 1009', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send('x'.repeat(100 * 1024));
  const c = await a.closed;
  t.equal(c.code, CloseCode.tooLarge);
  t.match(c.reason, /larger than 65536/);
});

refusal('far oversized frame is dropped by uWS itself', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send('x'.repeat(1024 * 1024));
  const c = await a.closed;
  t.ok(c.code === 1006 || c.code === CloseCode.tooLarge, `closed (${c.code})`);
});

refusal('malformed JSON closes with 4400', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send('{"type": "register", ');
  const c = await a.closed;
  t.equal(c.code, CloseCode.badMessage);
  t.equal(c.reason, 'malformed JSON');
});

refusal('schema failure closes with 4400 and names the field', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send({ ...registerMessage('bad-01'), labels: { role: 7 } });
  const c = await a.closed;
  t.equal(c.code, CloseCode.badMessage);
  t.match(c.reason, /labels/);
});

refusal('binary frame closes with 4400', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.ws.send(Buffer.from(JSON.stringify(registerMessage('bin-01'))));
  t.equal((await a.closed).code, CloseCode.badMessage);
});

refusal('a message of the wrong type for the phase closes with 4409', async (t) => {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send({ type: 'heartbeat', running: [] });
  const c = await a.closed;
  t.equal(c.code, CloseCode.wrongPhase);
  t.match(c.reason, /expected register/);
});

t.test('a second register closes with 4409 and deregisters', async (t) => {
  const a = new TestAgent(gw.url);
  await a.register('twice-01');
  a.send(registerMessage('twice-01'));
  t.equal((await a.closed).code, CloseCode.wrongPhase);
  // This agent did register, so its entry existed; the close must remove it again.
  const deadline = Date.now() + 2000;
  while ((await redis.exists(gw.keys.agent('twice-01'))) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 10));
  }
  // Index, known-agents and the connect reconcile job stay by design: only the hash must go.
  t.equal(await redis.exists(gw.keys.agent('twice-01')), 0);
  await redis.flushall();
});

t.test('an unknown path is a 404, the agent path needs an upgrade', async (t) => {
  const res = await fetch(`http://127.0.0.1:${gw.port}/nope`);
  t.equal(res.status, 404);
  await res.text();
});

refusal('a client aborting right after the upgrade request leaves nothing behind', async (t) => {
  const { connect } = await import('node:net');
  for (let i = 0; i < 20; i++) {
    const s = connect(gw.port, '127.0.0.1');
    await new Promise((res) => s.once('connect', res));
    s.write(
      `GET /agent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Authorization: Bearer ${TOKEN}\r\n\r\n`,
    );
    s.destroy();
  }
  t.pass('gateway survived aborted upgrades');
});
