/**
 * The list routes page with opaque cursors over many agents (registered through the real
 * registry, cheaply, with no sockets), tasks and drift; and reads are open or need a token.
 */
import t from 'tap';
import {
  DEFAULT_EVENTS_LIMIT,
  decodePageCursor,
  encodePageCursor,
  pageOf,
  parseLimit,
  parsePageRequest,
} from '../console/paging.js';
import type { TaskStatus } from '../shared/status.js';
import type { CompiledTask } from '../shared/types.js';
import { RedisStateStore } from '../store/desired-state/redis-state-store.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import { API_TOKEN, type ApiServer, startApiServer } from './helpers/api-server.js';
import { runEvent } from './store-events.contract.js';

const AGENTS = 250;
const pad = (i: number) => String(i).padStart(3, '0');
const agentName = (i: number) => `web-${pad(i)}`;

function task(name: string, role: string): CompiledTask {
  return {
    name,
    description: null,
    selector: { match_labels: { role }, match_expressions: [] },
    drift: null,
    steps: [
      {
        type: 'shell',
        name: 's',
        check: 'true',
        command: 'true',
        working_dir: null,
        run_as: null,
        env: {},
        on_failure: 'abort',
      },
    ],
  };
}

function status(taskName: string, outcome: TaskStatus['outcome'], i: number): TaskStatus {
  return {
    task: taskName,
    outcome,
    mode: 'check',
    revision: 'r1',
    execution_id: `x-${i}.0`,
    at: new Date().toISOString(),
    drifted_steps: outcome === 'drifted' ? ['s'] : [],
    failed_steps: [],
    policy: 'remediate',
  };
}

async function seed(api: ApiServer): Promise<void> {
  const redis = api.redis.client();
  const registry = new RedisRegistry({ redis, keys: api.keys, ttlMs: 60_000 });
  const statuses = new RedisStatusStore({ redis, keys: api.keys, ttlMs: 3600_000 });
  const now = Date.now();
  // Registered out of order: the API sorts.
  const order = Array.from({ length: AGENTS }, (_, i) => (i * 97) % AGENTS);
  await Promise.all(
    order.map((i) =>
      registry.register({
        name: agentName(i),
        labels: { role: i % 2 === 0 ? 'web' : 'db', zone: i % 5 === 0 ? 'a' : 'b' },
        gateway_id: 'gw-1',
        session_id: `s-${i}`,
        connected_at: now,
        last_seen: now,
        agent_version: 'test',
        executors: ['shell'],
        running: [],
      }),
    ),
  );
  // A known agent that is gone (no registry entry), sorting in the middle.
  await redis.zadd(api.keys.knownAgents(), now - 1000, 'web-100x');
  await Promise.all(
    Array.from({ length: AGENTS }, (_, i) =>
      statuses.setStatus(
        agentName(i),
        status(i % 2 === 0 ? 'site' : 'db', i % 3 === 0 ? 'drifted' : 'satisfied', i),
      ),
    ),
  );
  const tasks = Array.from({ length: 30 }, (_, i) => task(`t-${pad(29 - i)}`, 'web'));
  tasks.push(task('site', 'web'), task('db', 'db'));
  await new RedisStateStore({ redis, keys: api.keys }).saveGood('r1', { tasks }, new Date());
}

async function get<T>(api: ApiServer, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(api.url(path), { headers });
  return { status: res.status, json: (await res.json()) as T };
}

type Agents = {
  agents: { name: string; labels: Record<string, string>; connected: boolean; drift: { tasks: number } }[];
  next_cursor: string | null;
};

async function all<T>(
  api: ApiServer,
  path: string,
  pick: (page: T) => unknown[],
  cursorOf: (page: T) => string | null,
): Promise<{ items: unknown[]; pages: number }> {
  const items: unknown[] = [];
  let cursor: string | null = null;
  for (let pages = 1; pages < 1000; pages++) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await get<T>(api, cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.json)}`);
    items.push(...pick(res.json));
    cursor = cursorOf(res.json);
    if (cursor === null) return { items, pages };
  }
  throw new Error('cursor never ended');
}

t.test('paging, pure: limits, cursors, pages', async (t) => {
  const q = (s: string) => parsePageRequest(new URLSearchParams(s));
  t.same(q(''), { limit: 100, after: null });
  t.same(q('limit=0'), { limit: 1, after: null });
  t.same(q('limit=2.7'), { limit: 2, after: null });
  t.same(q('limit=99999'), { limit: 1000, after: null });
  t.same(q('limit=abc'), { limit: 100, after: null });
  t.same(q('limit='), { limit: 100, after: null }, 'an empty limit is the default, not 0 clamped to 1');
  t.equal(parseLimit(new URLSearchParams('limit='), DEFAULT_EVENTS_LIMIT), 20);
  t.equal(parseLimit(new URLSearchParams('limit=%20'), DEFAULT_EVENTS_LIMIT), 20);
  t.same(q(`cursor=${encodePageCursor('web-01\u0000x')}`), { limit: 100, after: 'web-01\u0000x' });
  t.throws(() => q('cursor=Zm9v'), { status: 400, code: 'invalid_cursor' }, 'base64 of something else');
  const keys = ['a', 'b', 'c', 'd', 'e'];
  const first = pageOf(keys, (k) => k, { limit: 2, after: null });
  t.same(first.items, ['a', 'b']);
  const second = pageOf(keys, (k) => k, { limit: 2, after: decodePageCursor(first.next_cursor as string) });
  t.same(second.items, ['c', 'd']);
  t.same(
    pageOf(keys, (k) => k, { limit: 2, after: 'bb' }).items,
    ['c', 'd'],
    'a key that is gone still pages',
  );
  const last = pageOf(keys, (k) => k, { limit: 5, after: null });
  t.equal(last.next_cursor, null, 'an exact fit has no next page');
});

t.test('paging', async (t) => {
  const api = await startApiServer(t);
  await seed(api);
  const expected = [...Array.from({ length: AGENTS }, (_, i) => agentName(i)), 'web-100x'].sort();

  t.test('agents: every agent once, in name order, across pages', async (t) => {
    const { items, pages } = await all<Agents>(
      api,
      '/api/v1/agents?limit=40',
      (p) => p.agents,
      (p) => p.next_cursor,
    );
    const names = (items as Agents['agents']).map((a) => a.name);
    t.same(names, expected);
    t.equal(pages, Math.ceil(expected.length / 40));
    const first = (await get<Agents>(api, '/api/v1/agents?limit=3')).json;
    t.same(
      first.agents.map((a) => a.name),
      expected.slice(0, 3),
    );
    t.type(first.next_cursor, 'string');
    t.match(first.agents[0], {
      name: 'web-000',
      connected: true,
      labels: { role: 'web' },
      drift: { tasks: 31 },
    });
    const gone = (items as Agents['agents']).find((a) => a.name === 'web-100x');
    t.match(gone, { connected: false, labels: {} }, 'a known agent with no registry entry is listed');
    const whole = await get<Agents>(api, '/api/v1/agents');
    t.equal(whole.json.agents.length, 100, 'default page size is 100');
    const big = await get<Agents>(api, '/api/v1/agents?limit=5000');
    t.equal(big.json.agents.length, expected.length, 'limit is clamped to 1000, which holds them all');
    t.equal(big.json.next_cursor, null, 'the last page has no cursor');
  });

  t.test('agents: a label filter pages over the matching agents only', async (t) => {
    const { items } = await all<Agents>(
      api,
      '/api/v1/agents?label=role=web&label=zone=a&limit=7',
      (p) => p.agents,
      (p) => p.next_cursor,
    );
    const want = Array.from({ length: AGENTS }, (_, i) => i)
      .filter((i) => i % 2 === 0 && i % 5 === 0)
      .map(agentName);
    t.same(
      (items as Agents['agents']).map((a) => a.name),
      want,
    );
    const bad = await get<{ code: string }>(api, '/api/v1/agents?label=novalue');
    t.equal(bad.status, 400);
    t.equal(bad.json.code, 'bad_request');
  });

  t.test('tasks and drift page too', async (t) => {
    type Tasks = {
      revision: string;
      tasks: { name: string; matched_agents: number; status_counts: Record<string, number> }[];
      next_cursor: string | null;
    };
    const tasks = await all<Tasks>(
      api,
      '/api/v1/tasks?limit=8',
      (p) => p.tasks,
      (p) => p.next_cursor,
    );
    const names = (tasks.items as Tasks['tasks']).map((x) => x.name);
    t.same(names, [...names].sort(), 'sorted by name');
    t.equal(names.length, 32);
    t.equal(tasks.pages, 4);
    const site = (tasks.items as Tasks['tasks']).find((x) => x.name === 'site');
    t.same(site?.matched_agents, AGENTS / 2);
    const webDrifted = Array.from({ length: AGENTS }, (_, i) => i).filter(
      (i) => i % 2 === 0 && i % 3 === 0,
    ).length;
    t.same(site?.status_counts, { drifted: webDrifted, satisfied: AGENTS / 2 - webDrifted });

    type Drift = { drift: { agent: string; task: string; outcome: string }[]; next_cursor: string | null };
    const drift = await all<Drift>(
      api,
      '/api/v1/drift?limit=9',
      (p) => p.drift,
      (p) => p.next_cursor,
    );
    const want = Array.from({ length: AGENTS }, (_, i) => i)
      .filter((i) => i % 3 === 0)
      .map((i) => `${agentName(i)}/${i % 2 === 0 ? 'site' : 'db'}`);
    t.same(
      (drift.items as Drift['drift']).map((d) => `${d.agent}/${d.task}`),
      want,
    );
  });

  t.test('a cursor this API did not hand out is refused', async (t) => {
    for (const path of ['/api/v1/agents', '/api/v1/tasks', '/api/v1/drift']) {
      for (const cursor of ['not-a-cursor', 'eDE6d2ViLTAwMQ', '%%%']) {
        const res = await get<{ code: string }>(api, `${path}?cursor=${encodeURIComponent(cursor)}`);
        t.equal(res.status, 400, `${path} ${cursor}`);
        t.equal(res.json.code, 'invalid_cursor');
      }
    }
  });
});

t.test('events: limit defaults to 20, an explicit one is honoured', async (t) => {
  const api = await startApiServer(t);
  // Recent: the store drops events older than its TTL.
  const base = Date.now() - 60_000;
  await api.events.recordMany(
    Array.from({ length: 30 }, (_, i) => runEvent(`e${pad(i)}`, 'web-01', 'site', base + i * 1000)),
  );
  type Events = { events: { id: string }[]; next_cursor: string | null };
  const count = async (query: string) => {
    const res = await get<Events>(api, `/api/v1/events${query}`);
    t.equal(res.status, 200, query);
    return res.json.events.length;
  };
  t.equal(await count(''), 20, 'no limit: 20');
  t.equal(await count('?limit='), 20, 'an empty limit: 20, not 1');
  t.equal(await count('?limit=abc'), 20, 'not a number: 20');
  t.equal(await count('?limit=5'), 5);
  t.equal(await count('?limit=25'), 25, 'more than the default');
  t.equal(await count('?agent=web-01&limit=1000'), 30);
  t.equal(await count('?limit=0'), 1, 'clamped to at least 1');
  const newest = await get<Events>(api, '/api/v1/events?limit=2');
  t.same(
    newest.json.events.map((e) => e.id),
    ['e029', 'e028'],
    'newest first',
  );
});

t.test('disconnected agents keep the labels they last registered with', async (t) => {
  const api = await startApiServer(t);
  const redis = api.redis.client();
  const registry = new RedisRegistry({ redis, keys: api.keys, ttlMs: 60_000 });
  // Entries that expire at once, as a silent agent's do after 3 heartbeats.
  const expiring = new RedisRegistry({ redis: api.redis.client(), keys: api.keys, ttlMs: 20 });
  const now = Date.now();
  const entry = (name: string, labels: Record<string, string>, lastSeen = now) => ({
    name,
    labels,
    gateway_id: 'gw-1',
    session_id: `s-${name}`,
    connected_at: lastSeen,
    last_seen: lastSeen,
    agent_version: 'test',
    executors: ['shell' as const],
    running: [],
  });
  const prod = { role: 'web', env: 'production' };
  await registry.register(entry('web-1', prod));
  await expiring.register(entry('web-2', prod));
  await registry.register(entry('web-3', { role: 'web', env: 'staging' }));
  await registry.register(entry('db-1', { role: 'db', env: 'production' }));
  t.ok(await registry.deregister('web-1', 's-web-1'), 'web-1 disconnected');
  for (let i = 0; (await redis.exists(api.keys.agent('web-2'))) && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.equal(await redis.exists(api.keys.agent('web-2')), 0, "web-2's entry expired");

  type Agent = Agents['agents'][number];
  const byName = (agents: Agent[]) => Object.fromEntries(agents.map((a) => [a.name, a]));
  const list = byName((await get<Agents>(api, '/api/v1/agents')).json.agents);
  t.match(list['web-1'], { connected: false, labels: prod }, 'deregistered: remembered labels');
  t.match(list['web-2'], { connected: false, labels: prod }, 'expired: remembered labels');
  t.match(list['web-3'], { connected: true, labels: { env: 'staging' } });

  const { items } = await all<Agents>(
    api,
    '/api/v1/agents?label=role=web&label=env=production&limit=1',
    (p) => p.agents,
    (p) => p.next_cursor,
  );
  t.same(
    (items as Agent[]).map((a) => [a.name, a.connected]),
    [
      ['web-1', false],
      ['web-2', false],
    ],
    'the label filter finds disconnected agents by their remembered labels',
  );

  type Detail = { agent: Agent & { tasks: unknown[] } };
  const one = await get<Detail>(api, '/api/v1/agents/web-2');
  t.equal(one.status, 200);
  t.match(one.json.agent, { name: 'web-2', connected: false, labels: prod, gateway_id: null });

  t.test('pruning a known agent drops its labels with it', async (t) => {
    const old = now - api.config.event_store.redis.ttl_ms - 60_000;
    await registry.register(entry('old-1', { role: 'web' }, old));
    await registry.deregister('old-1', 's-old-1');
    t.ok(await redis.hexists(api.keys.knownLabels(), 'old-1'), 'remembered until pruned');
    t.ok(Number(await redis.zscore(api.keys.knownAgents(), 'old-1')) >= now, 'disconnecting counts as seen');
    // Make it last seen before the retention window.
    await redis.zadd(api.keys.knownAgents(), old, 'old-1');
    // More stale names than one prune batch.
    const many = Array.from({ length: 1200 }, (_, i) => `gone-${i}`);
    await redis.zadd(api.keys.knownAgents(), ...many.flatMap((n) => [old, n]));
    await redis.hset(api.keys.knownLabels(), ...many.flatMap((n) => [n, '{}']));
    const names = (await get<Agents>(api, '/api/v1/agents')).json.agents.map((a) => a.name);
    t.notOk(names.includes('old-1'), 'no longer known');
    t.equal(await redis.zscore(api.keys.knownAgents(), 'old-1'), null);
    t.equal(await redis.hget(api.keys.knownLabels(), 'old-1'), null, 'its labels went with it');
    t.same(
      (await redis.hkeys(api.keys.knownLabels())).sort(),
      (await redis.zrange(api.keys.knownAgents(), 0, '-1')).sort(),
      'the hash holds exactly the known names',
    );
    t.equal((await get(api, '/api/v1/agents/old-1')).status, 404);
  });

  t.test('after FLUSHALL, a rebuild remembers the labels of connected agents again', async (t) => {
    await redis.flushall();
    const beat = { ...entry('web-3', { role: 'web', env: 'staging' }), last_seen: Date.now() };
    t.same(await registry.heartbeat([beat]), ['rebuilt']);
    t.ok(await registry.deregister('web-3', 's-web-3'), 'then it disconnects');
    const res = await get<Detail>(api, '/api/v1/agents/web-3');
    t.match(res.json.agent, { connected: false, labels: { role: 'web', env: 'staging' } });
    const filtered = await get<Agents>(api, '/api/v1/agents?label=env=staging');
    t.same(
      filtered.json.agents.map((a) => a.name),
      ['web-3'],
    );
  });
});

t.test('read access', async (t) => {
  t.test('open: reads need no token; writes still do', async (t) => {
    const api = await startApiServer(t);
    for (const path of [
      '/api/v1/status',
      '/api/v1/agents',
      '/api/v1/tasks',
      '/api/v1/drift',
      '/api/v1/events',
    ]) {
      t.equal((await get(api, path)).status, 200, path);
    }
    const write = await fetch(api.url('/api/v1/reconcile'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"target":"all"}',
    });
    t.equal(write.status, 401);
  });

  t.test('token: 401 without, 403 with a wrong one, 200 with Bearer or Basic', async (t) => {
    const api = await startApiServer(t, { readAccess: 'token' });
    const basic = `Basic ${Buffer.from(`anyone:${API_TOKEN}`).toString('base64')}`;
    for (const path of [
      '/api/v1/status',
      '/api/v1/agents',
      '/api/v1/agents/web-000',
      '/api/v1/tasks',
      '/api/v1/tasks/x',
      '/api/v1/drift',
      '/api/v1/events',
      '/api/v1/reconcile/nope',
      '/api/v1/executions/nope.0',
      '/api/v1/executions/nope.0/stream',
    ]) {
      const none = await get<{ code: string }>(api, path);
      t.equal(none.status, 401, `${path} without a token`);
      t.equal(none.json.code, 'unauthorized');
      const wrong = await get<{ code: string }>(api, path, { authorization: 'Bearer not-the-token' });
      t.equal(wrong.status, 403, `${path} with a wrong token`);
      t.equal(wrong.json.code, 'forbidden');
      const bearer = await get(api, path, { authorization: `Bearer ${API_TOKEN}` });
      t.not(bearer.status, 401, `${path} with Bearer`);
      t.not(bearer.status, 403);
      t.not((await get(api, path, { authorization: basic })).status, 401, `${path} with Basic`);
    }
    t.equal((await get(api, '/api/v1/status', { authorization: `Bearer ${API_TOKEN}` })).status, 200);
    t.equal((await get(api, '/healthz')).status, 200, '/healthz stays open');
    t.equal((await get(api, '/readyz')).status, 200, '/readyz stays open');
  });
});
