/**
 * Bounded input and scoped grants (issue 11, findings 3, 4, 5 and 8), on a real gateway and a real
 * Redis: label floods and bad names are refused before any Redis write, a scoped token's
 * restricted keys are required, bad tokens are throttled per address and logged with the remote
 * address, registrations are rate-limited per address and per grant, and the known-agents
 * history is capped. Source addresses are varied by binding the client to 127.0.0.x.
 */
import { Registry as PromRegistry } from 'prom-client';
import t from 'tap';
import { GatewayMetrics } from '../gateway/gateway-metrics.js';
import { SINGLE_REDIS } from '../shared/config/redis-topology.js';
import { Keys } from '../shared/keys.js';
import { CloseCode } from '../shared/protocol.js';
import { startRedis } from '../testkit/redis.js';
import { registerMessage, startGateway, TestAgent, TOKEN } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const redis = r.client();

async function keysUnderPrefix(): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `*${r.prefix}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.sort();
}

async function usedMemory(): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

async function metricValue(registry: PromRegistry, name: string, labels: Record<string, string>) {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Sends one register from a fresh socket and returns how the gateway closed it. */
async function attempt(url: string, message: unknown, localAddress = '127.0.0.1') {
  const a = new TestAgent(url, { localAddress });
  await a.opened;
  a.send(message);
  const closed = await a.closed;
  return closed;
}

const metricsRegistry = new PromRegistry();
const metrics = new GatewayMetrics(metricsRegistry);
const gw = await startGateway(r, {
  gatewayId: 'gw-security-input',
  metrics,
  scoped: [
    {
      id: 'staging',
      token: 'stg-token',
      allowed_labels: { env: ['staging'] },
      name_pattern: null,
      require_labels: true,
    },
    {
      id: 'lenient',
      token: 'lenient-token',
      allowed_labels: { env: ['staging'] },
      name_pattern: null,
      require_labels: false,
    },
  ],
});
t.teardown(() => gw.stop());
metrics.watch(gw.gateway);

t.test('Unbounded registration data: label floods are refused before Redis', async (t) => {
  const many: Record<string, string> = {};
  for (let i = 0; i < 40_000; i++) many[`k${i}`] = 'v';
  // About 1 MB of labels, under the 1 MiB frame limit so the label rule is what refuses it.
  const big: Record<string, string> = {};
  for (let i = 0; i < 3900; i++) big[`key-${i}`] = 'x'.repeat(250);
  // Few labels, but over the 8 KB total.
  const heavy: Record<string, string> = {};
  for (let i = 0; i < 60; i++) heavy[`key-${i}`] = 'y'.repeat(200);

  const keysBefore = await keysUnderPrefix();
  const labelsBefore = await redis.hlen(gw.keys.knownLabels());
  const memoryBefore = await usedMemory();
  const reasons = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const labels = [many, big, heavy][i % 3] as Record<string, string>;
    const closed = await attempt(gw.url, registerMessage(`flood-${i}`, labels));
    t.equal(closed.code, CloseCode.refused, `attempt ${i} refused with 4403`);
    reasons.add(closed.reason.replace(/\d+/g, 'N'));
  }
  t.ok(
    [...reasons].some((x) => x.includes('max_labels')),
    'the reason names max_labels',
  );
  t.ok(
    [...reasons].some((x) => x.includes('max_label_bytes')),
    'the reason names max_label_bytes',
  );
  t.equal(await redis.hlen(gw.keys.knownLabels()), labelsBefore, 'known-labels hash unchanged');
  const keysAfter = (await keysUnderPrefix()).filter((k) => k !== gw.keys.gateways());
  t.same(
    keysAfter,
    keysBefore.filter((k) => k !== gw.keys.gateways()),
    'no key written',
  );
  const grown = (await usedMemory()) - memoryBefore;
  // 30 accepted floods would have added ~32 MB; allow only noise (announces, client buffers on a loaded machine).
  t.ok(grown < 1024 * 1024, `Redis memory grew by ${grown} bytes only`);
  t.ok(
    (await metricValue(metricsRegistry, 'fluke_gateway_agent_refusals_total', { reason: 'labels' })) >= 30,
    'counted as labels refusals',
  );
});

t.test('Names are not validated on the wire: bad names and keys are refused, no key written', async (t) => {
  const before = await keysUnderPrefix();
  const names = [
    'web\u0000-01',
    'web\n01',
    'web{01}',
    '..',
    'web..01',
    '../etc',
    '\u001b[31mred',
    'web-\u009b31m',
    'x'.repeat(300),
    '',
    'web 01',
  ];
  for (const name of names) {
    const closed = await attempt(gw.url, registerMessage(name));
    t.equal(closed.code, CloseCode.badMessage, `name ${JSON.stringify(name.slice(0, 20))} refused with 4400`);
    t.match(closed.reason, /name/);
  }
  for (const key of [
    'env\u0000',
    'env\n',
    '{env}',
    'a/b/c',
    '-env',
    'UPPER.example.com/role',
    'x'.repeat(64),
  ]) {
    const closed = await attempt(gw.url, registerMessage('good-name', { [key]: 'v' }));
    t.equal(closed.code, CloseCode.badMessage, `label key ${JSON.stringify(key.slice(0, 20))} refused`);
  }
  for (const value of ['\u001b[2J', 'a\nb', 'v'.repeat(254)]) {
    const closed = await attempt(gw.url, registerMessage('good-name', { env: value }));
    t.equal(closed.code, CloseCode.badMessage, `label value ${JSON.stringify(value.slice(0, 20))} refused`);
  }
  const version = await attempt(gw.url, { ...registerMessage('good-name'), agent_version: '1.0\u001b[31m' });
  t.equal(version.code, CloseCode.badMessage, 'control characters in agent_version refused');
  const after = (await keysUnderPrefix()).filter((k) => k !== gw.keys.gateways());
  t.same(
    after,
    before.filter((k) => k !== gw.keys.gateways()),
    'no key written',
  );

  const ok = new TestAgent(gw.url);
  t.ok((await ok.register('fluke.example.com', { 'app.kubernetes.io/name': 'web', env: 'a b' })).session_id);
  await ok.close();
});

t.test('Scoped tokens are bypassed by leaving a restricted label out', async (t) => {
  const omitted = new TestAgent(gw.url, { token: 'stg-token' });
  await omitted.opened;
  omitted.send(registerMessage('scope-omit-01', { role: 'web' }));
  const refused = await omitted.next('refused');
  t.match(refused.reason, /requires label env/);
  t.equal((await omitted.closed).code, CloseCode.refused);
  t.equal(await redis.exists(gw.keys.agent('scope-omit-01')), 0, 'no registry entry');

  const lenient = new TestAgent(gw.url, { token: 'lenient-token' });
  t.ok(
    (await lenient.register('scope-omit-02', { role: 'web' })).session_id,
    'require_labels = false allows it',
  );
  await lenient.close();
  const declared = new TestAgent(gw.url, { token: 'stg-token' });
  t.ok((await declared.register('scope-omit-03', { env: 'staging', role: 'web' })).session_id);
  await declared.close();
});

t.test('No throttling or audit of bad agent tokens', async (t) => {
  const from = '127.0.0.3';
  const statuses: number[] = [];
  let retryAfter: string | undefined;
  const started = Date.now();
  for (let i = 0; i < 300; i += 50) {
    const batch = Array.from({ length: 50 }, async () => {
      const a = new TestAgent(gw.url, { token: `bad-${i}`, localAddress: from });
      a.ws.on('unexpected-response', (_req, res) => {
        retryAfter ??= res.statusCode === 429 ? res.headers['retry-after'] : undefined;
      });
      const res = await a.httpStatus;
      await a.closed;
      return res?.status ?? 0;
    });
    statuses.push(...(await Promise.all(batch)));
  }
  const seconds = (Date.now() - started) / 1000;
  const unauthorized = statuses.filter((s) => s === 401).length;
  const throttled = statuses.filter((s) => s === 429).length;
  t.equal(unauthorized + throttled, 300, 'every bad token refused');
  // The burst of 10, plus what refilled at 1/s while the loop ran.
  t.ok(
    unauthorized >= 10 && unauthorized <= 10 + Math.ceil(seconds) + 1,
    `${unauthorized} verified and refused`,
  );
  t.ok(throttled >= 300 - 10 - Math.ceil(seconds) - 1, `${throttled} answered 429 without a token check`);
  t.ok(Number(retryAfter) >= 1, `Retry-After: ${retryAfter}`);

  const lines = gw.logs.filter((l) => l.msg === 'agent upgrade refused' && String(l.remote).includes(from));
  t.ok(lines.length >= 1, 'logged with the remote address');
  t.ok(lines.length <= Math.ceil(seconds / 10) + 1, `rate-limited: ${lines.length} line(s) for 300 refusals`);
  t.match(lines[0], { level: 40, count: 1 });
  t.equal(
    await metricValue(metricsRegistry, 'fluke_gateway_agent_refusals_total', { reason: 'bad_token' }),
    unauthorized,
    'bad_token counted',
  );
  t.equal(
    await metricValue(metricsRegistry, 'fluke_gateway_agent_refusals_total', { reason: 'throttled' }),
    throttled,
    'throttled counted',
  );

  const blocked = new TestAgent(gw.url, { localAddress: from });
  t.equal((await blocked.httpStatus)?.status, 429, 'the throttled address is refused even with a good token');
  await blocked.closed;
  const other = new TestAgent(gw.url, { localAddress: '127.0.0.2' });
  t.ok((await other.register('other-address-01')).session_id, 'a good token from another address works');
  await other.close();
});

t.test('Registrations are rate-limited per source address and per grant', async (t) => {
  const limited = await startGateway(r, {
    gatewayId: 'gw-rate',
    config: {
      agent_limits: {
        // One token per 1000 s: nothing refills while the test runs, however loaded the machine.
        address_registration_rate: 0.001,
        address_registration_burst: 3,
        grant_registration_rate: 0.001,
        grant_registration_burst: 5,
      },
    },
    scoped: [
      { id: 'other', token: 'other-token', allowed_labels: {}, name_pattern: null, require_labels: true },
    ],
  });
  t.teardown(() => limited.stop());
  const open: TestAgent[] = [];
  t.teardown(() => Promise.all(open.map((a) => a.close())));

  for (let i = 0; i < 3; i++) {
    const a = new TestAgent(limited.url, { localAddress: '127.0.0.4' });
    open.push(a);
    t.ok((await a.register(`rate-addr-${i}`)).session_id, `registration ${i} within the address burst`);
  }
  const over = new TestAgent(limited.url, { localAddress: '127.0.0.4' });
  await over.opened;
  over.send(registerMessage('rate-addr-over'));
  const closed = await over.closed;
  t.equal(closed.code, 1013, 'over the address limit: 1013, try again later');
  t.match(closed.reason, /address_registration_rate/);
  t.equal(await redis.exists(limited.keys.agent('rate-addr-over')), 0, 'nothing written');

  // The grant (agent_tokens) took 3 of its 5 (the address refusal came first and took none): two
  // more from fresh addresses, then it is spent.
  for (let i = 0; i < 2; i++) {
    const a = new TestAgent(limited.url, { localAddress: `127.0.1.${i + 1}` });
    open.push(a);
    t.ok((await a.register(`rate-grant-${i}`)).session_id, `grant registration ${i}`);
  }
  const spent = await attempt(limited.url, registerMessage('rate-grant-over'), '127.0.1.9');
  t.equal(spent.code, 1013, 'over the grant limit: 1013');
  t.match(spent.reason, /grant_registration_rate/);
  const otherGrant = new TestAgent(limited.url, { token: 'other-token', localAddress: '127.0.1.10' });
  open.push(otherGrant);
  t.ok((await otherGrant.register('rate-other-grant')).session_id, 'another grant has its own bucket');
});

t.test('Known agents are bounded', async (t) => {
  const capped = await startGateway(r, {
    gatewayId: 'gw-known',
    config: {
      redis: { url: r.url, prefix: `${r.prefix}-known`, ...SINGLE_REDIS },
      agent_limits: { max_known_agents: 5 },
    },
  });
  t.teardown(() => capped.stop());
  const keys = new Keys(`${r.prefix}-known`);
  const open: TestAgent[] = [];
  t.teardown(() => Promise.all(open.map((a) => a.close())));
  for (let i = 0; i < 8; i++) {
    const a = new TestAgent(capped.url);
    open.push(a);
    await a.register(`known-${i}`, { n: String(i) });
    t.ok((await redis.zcard(keys.knownAgents())) <= 5, `at most 5 known after ${i + 1}`);
  }
  const known = await redis.zrange(keys.knownAgents(), 0, '-1');
  t.same(known.sort(), ['known-3', 'known-4', 'known-5', 'known-6', 'known-7'], 'the most recent kept');
  t.same((await redis.hkeys(keys.knownLabels())).sort(), known, 'labels only for known agents');
});

t.test('a good agent is unaffected', async (t) => {
  const a = new TestAgent(gw.url, { token: TOKEN });
  t.ok((await a.register('after-all-01', { env: 'prod' })).session_id);
  await a.close();
});
