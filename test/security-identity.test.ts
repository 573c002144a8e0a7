/**
 * Security: per-agent identity, on real gateways, a real Redis and the real agent (its connection,
 * credential file and re-enrollment). Finding: names were not bound to credentials — any accepted
 * token could register an existing agent's name, replace the real agent and take its instructions.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { type Agent, createAgent } from '../agent/agent.js';
import { loadAgentConfig } from '../shared/config/load.js';
import type { IdentityConfig } from '../shared/config/types.js';
import { credentialFingerprint, mintCredential } from '../shared/identity/agent-credential.js';
import { CloseCode } from '../shared/protocol.js';
import { decodeRegistryEntry } from '../shared/registry-entry.js';
import { startRedis } from '../testkit/redis.js';
import { tempDir } from './helpers/agent-harness.js';
import { API_TOKEN, startApiServer } from './helpers/api-server.js';
import { eventually, startGateway, TestAgent, type TestGateway, TOKEN } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const redis = r.client();
const STG_TOKEN = 'staging-bootstrap-token-0123456789';
const KEY = 'a-configured-identity-key-of-40-characters';
const SCOPED = [
  {
    id: 'staging',
    token: STG_TOKEN,
    allowed_labels: { env: ['staging'] },
    name_pattern: 'stg-*',
    require_labels: true,
  },
];
const IDENTITY: IdentityConfig = {
  key: null,
  generation: 1,
  revoked_before: {},
  enrollment_ttl_ms: 3_600_000,
  legacy_agents: true,
};

let gwCount = 0;
async function gateway(
  tt: Test,
  identity: Partial<IdentityConfig> = {},
  scoped = SCOPED,
): Promise<TestGateway> {
  const gw = await startGateway(r, {
    gatewayId: `gw-${gwCount++}`,
    scoped,
    config: { identity: { ...IDENTITY, ...identity } },
    // Loaded as in production: from identity.key, or kept in Redis.
    identityKey: null,
  });
  tt.teardown(() => gw.stop());
  return gw;
}

const entryOf = async (gw: TestGateway, name: string) =>
  decodeRegistryEntry(await redis.hgetall(gw.keys.agent(name)));

/** A raw agent that keeps heartbeating, so the gateway never sweeps it for silence. */
function keepAlive(tt: Test, agent: TestAgent): void {
  const timer = setInterval(() => agent.heartbeat(), 100);
  tt.teardown(async () => {
    clearInterval(timer);
    await agent.close();
  });
}

/** Enroll `name` over a raw socket: bootstrap token + the `identity` feature. */
async function enroll(tt: Test, gw: TestGateway, name: string, token = TOKEN, labels = {}) {
  const agent = new TestAgent(gw.url, { token });
  const reg = await agent.register(name, labels, ['identity', 'result_retry']);
  keepAlive(tt, agent);
  tt.ok(reg.credential, `${name} enrolled`);
  return { agent, reg, credential: reg.credential as string };
}

/** Reconnects `name` with its credential and the `identity` feature; heartbeats until the test ends. */
async function reconnect(tt: Test, gw: TestGateway, credential: string, name: string, labels = {}) {
  const agent = new TestAgent(gw.url, { token: credential });
  const reg = await agent.register(name, labels, ['identity']);
  keepAlive(tt, agent);
  return reg;
}

/**
 * A raw socket presenting `token` (default TOKEN) sends a register for `name`, written out as a
 * hand-made agent would (`more` adds or overrides fields); resolves to the gateway's refusal.
 */
async function refusedRegister(
  gw: TestGateway,
  name: string,
  o: { token?: string; labels?: Record<string, string>; more?: Record<string, unknown> } = {},
) {
  const agent = new TestAgent(gw.url, o.token ? { token: o.token } : {});
  await agent.opened;
  agent.send({
    type: 'register',
    v: 1,
    name,
    labels: o.labels ?? {},
    agent_version: 't',
    executors: ['shell'],
    ...o.more,
  });
  return { agent, refused: await agent.next('refused') };
}

/** `credential` presented to `gw` is refused at the upgrade: 401 credential_rejected. */
async function assertRejected(tt: Test, gw: TestGateway, credential: string, why?: string) {
  const status = await new TestAgent(gw.url, { token: credential }).httpStatus;
  tt.equal(status?.status, 401, ...(why === undefined ? [] : [`${why}: the old credential is refused`]));
  tt.match(
    JSON.parse(status?.body ?? '{}'),
    { code: 'credential_rejected' },
    ...(why === undefined ? [] : [why]),
  );
}

t.test(
  'takeover: another identity claiming an enrolled name is refused name_held, the holder keeps its session',
  async (t) => {
    const gw = await gateway(t);
    const holder = await enroll(t, gw, 'web-01');
    const before = await entryOf(gw, 'web-01');
    t.equal(before?.session_id, holder.reg.session_id);
    for (let i = 0; i < 10; i++) {
      // Alternate an enrolling impostor and a legacy (no `identity`) one, both with a valid token.
      const { agent: impostor, refused } = await refusedRegister(gw, 'web-01', {
        more: { agent_version: 'evil', running: [], features: i % 2 ? ['identity'] : [] },
      });
      t.equal(refused.code, 'name_held', `attempt ${i}: refused name_held`);
      t.match(refused.reason, /release the name/);
      t.equal((await impostor.closed).code, CloseCode.refused);
    }
    t.equal(holder.agent.ws.readyState, holder.agent.ws.OPEN, 'the holder was never disconnected');
    t.equal(
      (await entryOf(gw, 'web-01'))?.session_id,
      holder.reg.session_id,
      'its registry session is unchanged',
    );
    t.ok(
      gw.logs.filter((l) => l.msg === 'name held by another identity').length >= 10,
      'every refusal is logged with the holder',
    );
  },
);

t.test('a credential registers its own name only (name_mismatch)', async (t) => {
  const gw = await gateway(t);
  const a = await enroll(t, gw, 'web-02');
  const stolen = await refusedRegister(gw, 'web-03', { token: a.credential });
  t.match(stolen.refused, { code: 'name_mismatch' });
  t.equal(a.agent.ws.readyState, a.agent.ws.OPEN);
});

t.test('the same credential reconnecting replaces its old session', async (t) => {
  const gw = await gateway(t);
  const first = await enroll(t, gw, 'web-04');
  const reg = await reconnect(t, gw, first.credential, 'web-04');
  t.equal(reg.credential, undefined, 'no new credential for an agent that already has one');
  t.equal((await first.agent.closed).code, CloseCode.replaced, 'the old session is replaced');
  t.equal((await entryOf(gw, 'web-04'))?.session_id, reg.session_id);
  // Legacy agents of one grant still replace each other, as before.
  const l1 = new TestAgent(gw.url);
  await l1.register('legacy-01');
  const l2 = new TestAgent(gw.url);
  await l2.register('legacy-01');
  keepAlive(t, l2);
  t.equal((await l1.closed).code, CloseCode.replaced);
});

t.test('a forged or modified credential is refused 401 credential_rejected', async (t) => {
  const gw = await gateway(t);
  const { credential } = await enroll(t, gw, 'web-05');
  const parts = credential.split('.');
  const forged = [
    mintCredential(Buffer.alloc(32, 1), { name: 'web-05', grant: 'unscoped', generation: 1, issued_at: 1 }),
    [parts[0], Buffer.from('web-06').toString('base64url'), ...parts.slice(2)].join('.'),
    [...parts.slice(0, 4), String(Number(parts[4]) + 1), ...parts.slice(5)].join('.'),
    `${credential.slice(0, -2)}${credential.endsWith('AA') ? 'BB' : 'AA'}`,
  ];
  for (const bearer of forged) await assertRejected(t, gw, bearer);
});

t.test('scoped grant: an enrolled staging agent stays inside its block', async (t) => {
  const gw = await gateway(t);
  const stg = await enroll(t, gw, 'stg-01', STG_TOKEN, { env: 'staging' });
  await stg.agent.close();
  const wrongName = await refusedRegister(gw, 'web-07', { token: stg.credential });
  t.match(wrongName.refused, { code: 'name_mismatch' }, 'not another name');
  const wrongLabel = await refusedRegister(gw, 'stg-01', {
    token: stg.credential,
    labels: { env: 'production' },
  });
  t.match(wrongLabel.refused, { code: 'scope' }, 'not a label outside the block');
  const enrollOutside = await refusedRegister(gw, 'web-07', {
    token: STG_TOKEN,
    more: { features: ['identity'] },
  });
  t.match(enrollOutside.refused, { code: 'scope' }, 'the bootstrap token cannot enroll outside it');
  // The block narrowed after enrollment: the credential is held to the grant as configured now.
  const narrowed = await gateway(t, {}, [{ ...SCOPED[0], name_pattern: 'stg-db-*' }] as typeof SCOPED);
  const after = await refusedRegister(narrowed, 'stg-01', {
    token: stg.credential,
    labels: { env: 'staging' },
  });
  t.match(after.refused, { code: 'scope' });
});

t.test(
  'revocation: each way refuses the old credential, and the agent re-enrolls with its token',
  async (t) => {
    /** Whole seconds since the epoch, as credentials carry them. */
    const issuedAt = (credential: string) => Number(credential.split('.')[4]);
    const cases: Array<{
      why: string;
      name: string;
      token: string;
      change: (old: string) => Partial<IdentityConfig>;
      scoped: typeof SCOPED;
    }> = [
      {
        why: 'generation bump',
        name: 'rev-gen',
        token: TOKEN,
        change: () => ({ generation: 2 }),
        scoped: SCOPED,
      },
      {
        why: 'revoked_before for one agent',
        name: 'stg-rev',
        token: STG_TOKEN,
        change: (old) => ({ revoked_before: { 'stg-rev': (issuedAt(old) + 1) * 1000 } }),
        scoped: SCOPED,
      },
      {
        // The block's token moves to a block of another id, so the agent can still enroll.
        why: 'scoped block removed',
        name: 'stg-gone',
        token: STG_TOKEN,
        change: () => ({}),
        scoped: [{ ...SCOPED[0], id: 'staging-2' }] as typeof SCOPED,
      },
    ];
    for (const { why, name, token, change, scoped } of cases) {
      const before = await gateway(t, { key: KEY });
      const labels: Record<string, string> = token === STG_TOKEN ? { env: 'staging' } : {};
      const old = await enroll(t, before, name, token, labels);
      await old.agent.close();
      // The operator's change, on a gateway started with it.
      const after = await gateway(t, { key: KEY, ...change(old.credential) }, scoped);
      await assertRejected(t, after, old.credential, why);
      // A credential issued after revoked_before needs the clock past it: wait for the next second.
      await eventually(
        async () => Math.floor(Date.now() / 1000),
        (s) => s > issuedAt(old.credential),
        3000,
      );
      const again = await enroll(t, after, name, token, labels);
      t.not(again.credential, old.credential, `${why}: re-enrolled with the bootstrap token`);
      await again.agent.close();
      const reg = await reconnect(t, after, again.credential, name, labels);
      t.ok(reg.session_id, `${why}: the new credential works`);
    }
  },
);

t.test('after FLUSHALL with a configured key, existing credentials still work', async (t) => {
  const first = await gateway(t, { key: KEY });
  const { agent, credential } = await enroll(t, first, 'web-08');
  await agent.close();
  await first.stop();
  await redis.flushall();
  const restarted = await gateway(t, { key: KEY });
  const reg = await reconnect(t, restarted, credential, 'web-08');
  t.equal(reg.credential, undefined, 'accepted as it is');
  const record = await redis.hgetall(restarted.keys.enrollment('web-08'));
  t.equal(record.identity, credentialFingerprint(credential), 'the record is written again');
});

/** The real agent, in this process, with its config (and credential file) in `dir`. */
async function realAgent(tt: Test, dir: string, url: string, name: string): Promise<Agent> {
  const file = join(dir, 'agent.hcl');
  writeFileSync(
    file,
    `agent {\n  server_url = "${url.replace(/\/agent$/, '')}"\n  token = "${TOKEN}"\n  name = "${name}"\n  log { level = "error" }\n}\n`,
  );
  const config = await loadAgentConfig(file);
  const agent = createAgent({
    config,
    logger: pino({ level: 'silent' }),
    version: 'test',
    connection: { backoffBaseMs: 50, backoffCapMs: 400 },
  });
  agent.start();
  tt.teardown(() => agent.stop());
  return agent;
}

/** Until the real agent's connection is registered. */
const untilRegistered = (agent: Agent) =>
  eventually(
    async () => agent.connection.isRegistered,
    (ok) => ok,
    15_000,
  );

t.test(
  'the agent: enrollment writes a 0600 credential file, the next start uses it, a rejected one is replaced',
  async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'agent.credential');
    const gw = await gateway(t, { key: KEY });
    const first = await realAgent(t, dir, gw.url, 'host-01');
    const credential = await eventually(
      async () => {
        try {
          return readFileSync(file, 'utf8').trim();
        } catch {
          return '';
        }
      },
      (c) => c.startsWith('fluke1.'),
      15_000,
    );
    t.equal(statSync(file).mode & 0o777, 0o600, 'mode 0600');
    await first.stop();

    const second = await realAgent(t, dir, gw.url, 'host-01');
    await untilRegistered(second);
    const registered = gw.logs.filter((l) => l.msg === 'agent registered' && l.agent === 'host-01');
    t.match(
      registered.at(-1),
      { auth: 'credential', enrolled: false },
      'the second start presented its credential',
    );
    t.equal(readFileSync(file, 'utf8').trim(), credential, 'and kept it');
    await second.stop();

    // Revoked (generation bump): the agent is refused 401, re-enrolls with its token, saves the new one.
    const bumped = await gateway(t, { key: KEY, generation: 2 });
    const third = await realAgent(t, dir, bumped.url, 'host-01');
    const renewed = await eventually(
      async () => readFileSync(file, 'utf8').trim(),
      (c) => c !== credential,
      15_000,
    );
    await untilRegistered(third);
    t.match(renewed, /^fluke1\..*\.2\.\d+\./, 'a credential of generation 2');
    t.equal(statSync(file).mode & 0o777, 0o600);
  },
);

t.test(
  'release: after DELETE /api/v1/agents/{name}/enrollment a re-imaged host enrolls the name',
  async (t) => {
    const api = await startApiServer(t);
    t.teardown(() => api.close());
    const gw = await startGateway(api.redis, { gatewayId: 'gw-release' });
    t.teardown(() => gw.stop());
    const old = await enroll(t, gw, 'web-09');
    await old.agent.close();
    const reimaged = await refusedRegister(gw, 'web-09', { more: { features: ['identity'] } });
    t.match(reimaged.refused, { code: 'name_held' }, 'held until released');
    const url = api.url('/api/v1/agents/web-09/enrollment');
    t.equal((await fetch(url, { method: 'DELETE' })).status, 401, 'an API token is required');
    const res = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${API_TOKEN}` } });
    t.equal(res.status, 200);
    t.same(await res.json(), {
      name: 'web-09',
      released: true,
      identity: credentialFingerprint(old.credential),
      grant: 'unscoped',
    });
    const again = await enroll(t, gw, 'web-09');
    t.not(again.credential, old.credential, 'the re-imaged host enrolled');
    const twice = await fetch(api.url('/api/v1/agents/web-10/enrollment'), {
      method: 'DELETE',
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    t.match(await twice.json(), { released: false }, 'releasing a free name is harmless');
  },
);

t.test('without identity.key, the key in Redis is re-asserted after a FLUSHALL', async (t) => {
  const gw = await gateway(t);
  const stored = await redis.get(gw.keys.identityKey());
  t.ok(stored, 'created at start');
  const { credential } = await enroll(t, gw, 'web-11');
  await redis.flushall();
  await eventually(
    () => redis.get(gw.keys.identityKey()),
    (v) => v === stored,
    10_000,
  );
  const reg = await reconnect(t, gw, credential, 'web-11');
  t.ok(reg.session_id, 'the credential still works');
});

t.test('identity.legacy_agents = false refuses agents that do not enroll', async (t) => {
  const gw = await gateway(t, { legacy_agents: false });
  t.match((await refusedRegister(gw, 'old-01')).refused, { code: 'legacy_refused' });
  await enroll(t, gw, 'old-01');
});

t.test('identity.enrollment_ttl: a connected agent keeps its name past the TTL', async (t) => {
  const gw = await gateway(t, { enrollment_ttl_ms: 1500 });
  await enroll(t, gw, 'web-12');
  const key = gw.keys.enrollment('web-12');
  const first = await redis.pttl(key);
  t.ok(first > 0 && first <= 1500, `TTL set (${first} ms)`);
  const start = Date.now();
  let lapsed = false;
  await eventually(
    async () => {
      if ((await redis.exists(key)) === 0) lapsed = true;
      return Date.now() - start;
    },
    (elapsed) => lapsed || elapsed > 3500,
    10_000,
  );
  t.notOk(lapsed, 'renewed by its gateway while the session lasts');
  t.match((await refusedRegister(gw, 'web-12')).refused, { code: 'name_held' });
});
