/**
 * Finding 10, the HTTP surface, on the real all-in-one server (private Redis, real Git, real
 * queues, uWS on real ports): security headers on every route class and no `uWebSockets` mark;
 * the Host allowlist (the DNS-rebinding board pause); Origin on state-changing calls; the
 * per-client SSE cap; /readyz while Redis is frozen; the eviction policy re-checked at runtime.
 * Plus the guard's pure rules.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { DEFAULT_MAX_STREAMS_PER_CLIENT } from '../console/api-executions.js';
import { guardRequest, hostPart, hostPolicy, originMatches } from '../console/http-guard.js';
import { READY_TIMEOUT_MS, REDIS_NOT_ANSWERING, readinessCheck } from '../console/readiness.js';
import { Keys } from '../shared/keys.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import {
  EVICTION_CHECK_MS as EVICTION_CHECK_MS_DEFAULT,
  watchEvictionPolicy,
} from '../store/redis/eviction-watch.js';
import { startRedis } from '../testkit/redis.js';
import { waitFor } from '../testkit/system.js';
import { API_TOKEN, basic, type ConsoleServices, startConsoleServices } from './helpers/console-services.js';
import { openSse, type SseStream } from './helpers/sse-client.js';

const SECOND_TOKEN = 'second-api-token-for-tests-0123456789';
/** The eviction re-check interval of these servers (the default is a minute). */
const EVICTION_CHECK_MS = 250;

/** The all-in-one server with a second API token and a fast eviction re-check. */
function startServer(
  t: { teardown(fn: () => unknown): void },
  o: { readAccess: 'open' | 'token'; allowedHosts?: string[]; logs?: string[] },
): Promise<ConsoleServices> {
  const { logs } = o;
  return startConsoleServices(t, {
    readAccess: o.readAccess,
    apiTokens: [API_TOKEN, SECOND_TOKEN],
    ...(o.allowedHosts ? { allowedHosts: o.allowedHosts } : {}),
    ...(logs ? { logger: pino({ level: 'warn' }, { write: (line: string) => void logs.push(line) }) } : {}),
    evictionCheckMs: EVICTION_CHECK_MS,
  });
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with exactly these headers (fetch would not let a test choose Host). */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A request whose Host header is empty. (uWebSockets.js 20 answers neither HTTP/1.0 nor HTTP/1.1
 * without a Host line at all: it holds such a connection without a reply, before any route.)
 */
function hostless(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost:\r\n\r\n`));
    let text = '';
    const done = () => resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0), text });
    socket.on('data', (d) => {
      text += d.toString();
      // uWS keeps the connection open after the answer: stop at the end of the body.
      const head = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      if (head >= 0 && length !== undefined && text.length >= head + 4 + Number(length)) {
        socket.destroy();
        done();
      }
    });
    socket.on('end', done);
    socket.on('error', reject);
  });
}

function record(instruction: string): InstructionRecord {
  return {
    instruction_id: instruction,
    agent: 'web-01',
    session_id: 's-1',
    trigger: 'manual',
    run_id: null,
    revision: 'r1',
    created_at: new Date().toISOString(),
    retry: 0,
    tasks: [{ task: 'deploy', execution_id: `${instruction}.0`, mode: 'apply', policy: 'remediate' }],
  };
}

const bearer = (token = API_TOKEN) => ({ authorization: `Bearer ${token}` });

async function queuePaused(base: string, name: string): Promise<boolean> {
  const res = await fetch(`${base}/queues/api/queues`, { headers: bearer() });
  const { queues } = (await res.json()) as { queues: { name: string; isPaused: boolean }[] };
  return queues.find((q) => q.name === name)?.isPaused ?? false;
}

t.test('the guard rules, pure', async (t) => {
  const open = hostPolicy(null, '');
  t.same([...open.names], ['localhost'], 'binding every interface names no host');
  t.same([...hostPolicy(null, 'fluke.internal').names].sort(), ['fluke.internal', 'localhost']);
  t.ok(hostPolicy(['*'], '').any, '"*" allows any Host');
  t.equal(hostPart('Fluke.Example.com.:7071'), 'fluke.example.com');
  t.equal(hostPart('[::1]:7071'), '::1');
  t.equal(hostPart('a@b:1'), null, 'userinfo is no Host');
  t.equal(hostPart('[::1]x'), null);
  const listed = hostPolicy(['fluke.example.com'], '');
  const guard = (headers: Record<string, string>, method = 'GET', path = '/api/v1/status') =>
    guardRequest({ method, path, headers }, { policy: listed, tls: false })?.status ?? 200;
  t.equal(guard({ host: 'fluke.example.com:7071' }), 200);
  t.equal(guard({ host: 'localhost' }), 200, 'localhost always');
  t.equal(guard({ host: '192.0.2.7:7071' }), 200, 'an IPv4 literal cannot be rebound');
  t.equal(guard({ host: '[2001:db8::1]:7071' }), 200, 'nor an IPv6 literal');
  t.equal(guard({ host: 'evil.example' }), 421);
  t.equal(guard({ host: '127.1' }), 421, 'a short IPv4 form is not a literal');
  t.equal(guard({}), 421, 'no Host: only the health routes');
  t.equal(guard({}, 'GET', '/readyz'), 200);
  const post = (origin: string) => guard({ host: 'fluke.example.com', origin }, 'POST');
  t.equal(post('http://fluke.example.com'), 200);
  t.equal(post('https://fluke.example.com'), 200, 'behind a TLS-terminating proxy');
  t.equal(post('http://fluke.example.com:8080'), 403, 'another port is another origin');
  t.equal(post('null'), 403, 'the opaque origin');
  t.equal(guard({ host: 'fluke.example.com', origin: 'http://evil.example' }, 'GET'), 200, 'reads: no check');
  t.notOk(originMatches('http://fluke.example.com', 'fluke.example.com', listed, true), 'TLS on: https only');
});

t.test(
  'readiness shares one PING; the eviction watch repeats its error at most every logEveryMs',
  async (t) => {
    let pings = 0;
    const check = readinessCheck({
      ping: () => {
        pings++;
        return new Promise<boolean>(() => {}); // a frozen Redis never answers
      },
      timeoutMs: 50,
    });
    t.same(await Promise.all([check(), check(), check()]), Array(3).fill(REDIS_NOT_ANSWERING));
    t.equal(await check(), REDIS_NOT_ANSWERING);
    t.equal(pings, 1, 'probes share the PING still waiting');

    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const client = redis.client();
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
    const quiet = watchEvictionPolicy({
      clients: [client],
      logger,
      intervalMs: 3_600_000,
      logEveryMs: 3_600_000,
    });
    t.teardown(() => quiet.stop());
    for (let i = 0; i < 3; i++) await quiet.check();
    t.match(quiet.problem(), /allkeys-lru/);
    t.equal(errors.length, 1, 'found wrong three times, logged once within logEveryMs');
    const loud = watchEvictionPolicy({ clients: [client], logger, intervalMs: 3_600_000, logEveryMs: 0 });
    t.teardown(() => loud.stop());
    for (let i = 0; i < 2; i++) await loud.check();
    t.equal(errors.length, 3, 'and again once logEveryMs has passed');
    await client.config('SET', 'maxmemory-policy', 'noeviction');
    await quiet.check();
    t.equal(quiet.problem(), null, 'fixed: no problem');
    t.equal(EVICTION_CHECK_MS_DEFAULT, 60_000, 'the default interval is a minute');
  },
);

t.test('finding 10: security headers on every route class, no uWebSockets mark', async (t) => {
  const s = await startServer(t, { readAccess: 'token' });
  const instructions = new RedisInstructionStore({ redis: s.redis.client(), keys: new Keys(s.redis.prefix) });
  await instructions.save(record('i-h'));
  const auth = bearer();
  const routes: [string, string, Record<string, string>, number][] = [
    ['UI page', '/', {}, 200],
    ['UI asset', '/ui/app.js', {}, 200],
    ['API read', '/api/v1/status', auth, 200],
    ['API refusal', '/api/v1/status', {}, 401],
    ['Bull Board page', '/queues', auth, 200],
    ['Bull Board API', '/queues/api/queues', auth, 200],
    ['metrics', '/metrics', auth, 200],
    ['liveness', '/healthz', {}, 200],
    ['readiness', '/readyz', {}, 200],
    ['404', '/no/such/route', {}, 404],
    ['405', '/api/v1/reconcile', auth, 405],
  ];
  for (const [what, path, headers, status] of routes) {
    const res = await fetch(`${s.base}${path}`, { headers });
    await res.arrayBuffer();
    t.equal(res.status, status, `${what}: status`);
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
    t.match(
      res.headers.get('content-security-policy'),
      /default-src '(none|self)'.*frame-ancestors 'none'/,
      `${what}: CSP`,
    );
    t.equal(res.headers.get('referrer-policy'), 'no-referrer', `${what}: referrer policy`);
    t.equal(res.headers.get('x-frame-options'), 'DENY', `${what}: no framing`);
    t.equal(res.headers.get('uwebsockets'), null, `${what}: no uWebSockets header`);
  }
  const page = await fetch(`${s.base}/`);
  t.match(page.headers.get('content-security-policy'), /script-src 'self'/, 'the UI keeps its own CSP');
  const stream = await openSse(`${s.base}/api/v1/executions/i-h.0/stream`, auth);
  t.teardown(() => stream.abort());
  t.equal(stream.status, 200);
  t.equal(stream.headers.get('x-content-type-options'), 'nosniff', 'an event stream: nosniff');
  t.equal(stream.headers.get('uwebsockets'), null);
  const misdirected = await raw(s.httpPort, 'GET', '/api/v1/status', { host: 'evil.example' });
  t.equal(misdirected.status, 421);
  t.equal(misdirected.headers['x-content-type-options'], 'nosniff', 'a refused Host: nosniff');

  // The agent endpoint's plain HTTP answers (listen_agents).
  for (const [what, headers, status] of [
    ['agent endpoint 404', {}, 404],
    ['agent endpoint 401', { connection: 'Upgrade', upgrade: 'websocket' }, 401],
  ] as const) {
    const res = await raw(s.agentsPort, 'GET', status === 401 ? '/agent' : '/', {
      host: `127.0.0.1:${s.agentsPort}`,
      ...headers,
      ...(status === 401
        ? { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
        : {}),
    });
    t.equal(res.status, status, `${what}: status`);
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
    t.equal(res.headers.uwebsockets, undefined, `${what}: no uWebSockets header`);
  }
});

t.test('finding 10: the Host allowlist (DNS rebinding cannot pause a Bull Board queue)', async (t) => {
  const s = await startServer(t, { readAccess: 'token' });
  const port = s.httpPort;
  const auth = basic(API_TOKEN);
  // The finding: the attacker's name, rebound to this server, as Host and as Origin, with the
  // browser's cached Basic credentials.
  const rebound = await raw(port, 'PUT', '/queues/api/queues/alerts/pause', {
    host: `evil.example:${port}`,
    origin: `http://evil.example:${port}`,
    authorization: auth,
  });
  t.equal(rebound.status, 421, 'a Host that is not allowed: 421 Misdirected Request');
  t.match(JSON.parse(rebound.body), { code: 'host_not_allowed' });
  t.notOk(await queuePaused(s.base, 'alerts'), 'the queue still runs');
  t.equal(
    (await raw(port, 'GET', '/api/v1/status', { host: `evil.example:${port}`, authorization: auth })).status,
    421,
    'reads too (the API, with a token)',
  );
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, '192.0.2.10']) {
    const res = await raw(port, 'GET', '/api/v1/status', { host, authorization: auth });
    t.equal(res.status, 200, `Host ${host} is allowed by default`);
  }
  const own = await raw(port, 'PUT', '/queues/api/queues/alerts/pause', {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    authorization: auth,
  });
  t.equal(own.status, 200, 'the board itself can still act');
  t.ok(await queuePaused(s.base, 'alerts'));
  const foreignOrigin = await raw(port, 'PUT', '/queues/api/queues/alerts/resume', {
    host: `127.0.0.1:${port}`,
    origin: `http://localhost:${port}`,
    authorization: auth,
  });
  t.equal(foreignOrigin.status, 403, 'an Origin other than the Host reached is refused');
  t.ok(await queuePaused(s.base, 'alerts'), 'still paused');

  for (const path of ['/healthz', '/readyz']) {
    const probe = await hostless(port, path);
    t.equal(probe.status, 200, `a probe with an empty Host gets ${path}`);
  }
  t.equal((await hostless(port, '/api/v1/status')).status, 421, 'but nothing else');

  const logs: string[] = [];
  const listed = await startServer(t, { readAccess: 'open', allowedHosts: ['fluke.example.com'], logs });
  const get = (host: string) => raw(listed.httpPort, 'GET', '/api/v1/status', { host });
  t.equal((await get(`fluke.example.com:${listed.httpPort}`)).status, 200, 'a listed name');
  t.equal((await get(`FLUKE.example.com.:${listed.httpPort}`)).status, 200, 'case and trailing dot');
  t.equal((await get(`other.example.com:${listed.httpPort}`)).status, 421, 'an unlisted name');
  t.equal((await get(`10.9.8.7:${listed.httpPort}`)).status, 200, 'IP literals stay allowed');
  for (let i = 0; i < 105; i++) await get(`scan-${i}.example`);
  await get('scan-0.example');
  const refusedLogs = logs.filter((l) => l.includes('Host not in server.http.allowed_hosts'));
  t.equal(refusedLogs.length, 100, 'each refused Host is logged once, 100 at most');
});

t.test('finding 10: /api/v1 checks Origin on state-changing calls', async (t) => {
  const s = await startServer(t, { readAccess: 'token' });
  const port = s.httpPort;
  const reconcile = (headers: Record<string, string>) =>
    raw(
      port,
      'POST',
      '/api/v1/reconcile',
      { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...bearer(), ...headers },
      JSON.stringify({ target: 'all' }),
    );
  const foreign = await reconcile({ origin: 'https://evil.example' });
  t.equal(foreign.status, 403, 'a foreign Origin, even with a valid token');
  t.match(JSON.parse(foreign.body), { code: 'cross_site' });
  t.equal((await reconcile({ origin: 'null' })).status, 403, 'the opaque origin');
  t.equal((await reconcile({})).status, 202, 'no Origin (CLI, curl): the token governs');
  t.equal((await reconcile({ origin: `http://127.0.0.1:${port}` })).status, 202, 'its own origin');
  const read = await raw(port, 'GET', '/api/v1/status', {
    host: `127.0.0.1:${port}`,
    origin: 'https://evil.example',
    ...bearer(),
  });
  t.equal(read.status, 200, 'reads are not checked (no CORS headers: a browser never shows the answer)');
  t.equal(read.headers['access-control-allow-origin'], undefined);
});

t.test('finding 10: one client cannot hold every SSE slot', async (t) => {
  const s = await startServer(t, { readAccess: 'open' });
  const instructions = new RedisInstructionStore({ redis: s.redis.client(), keys: new Keys(s.redis.prefix) });
  await instructions.save(record('i-s'));
  const url = `${s.base}/api/v1/executions/i-s.0/stream`;
  const open: SseStream[] = [];
  t.teardown(() => {
    for (const stream of open) stream.abort();
  });
  for (let i = 0; i < DEFAULT_MAX_STREAMS_PER_CLIENT; i++) {
    const stream = await openSse(url, bearer());
    open.push(stream);
    if (stream.status !== 200) t.fail(`stream ${i + 1}: ${stream.status}`);
  }
  t.pass(`one token holds ${DEFAULT_MAX_STREAMS_PER_CLIENT} streams`);
  const over = await fetch(url, { headers: bearer() });
  t.equal(over.status, 429, 'one more from the same token: 429');
  t.match(await over.json(), { code: 'too_many_client_streams' });
  const other = await openSse(url, bearer(SECOND_TOKEN));
  open.push(other);
  t.equal(other.status, 200, 'another token still gets a stream');
  const anonymous = await openSse(url);
  open.push(anonymous);
  t.equal(anonymous.status, 200, 'and so does an anonymous client (counted by address)');
  // Made-up tokens pass an open read check, but must not make new buckets: counted by address.
  for (let i = 1; i < DEFAULT_MAX_STREAMS_PER_CLIENT; i++) {
    const stream = await openSse(url, bearer(`made-up-${i}`));
    open.push(stream);
    if (stream.status !== 200) t.fail(`anonymous stream ${i + 1}: ${stream.status}`);
  }
  const madeUp = await fetch(url, { headers: bearer('made-up-last') });
  t.equal(madeUp.status, 429, 'an invalid token is no new client: the address is full');
  await madeUp.arrayBuffer();
  open.shift()?.abort();
  const again = await waitFor(
    'a slot released',
    async () => {
      const res = await fetch(url, { headers: bearer(), signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) await res.arrayBuffer();
      else await res.body?.cancel();
      return res.status;
    },
    (status) => status === 200,
    30_000,
  );
  t.equal(again, 200, 'a closed stream frees its client slot');
});

t.test('finding 10: the eviction policy is re-checked while running', async (t) => {
  const s = await startServer(t, { readAccess: 'token' });
  const admin = s.redis.client();
  t.teardown(() => admin.config('SET', 'maxmemory-policy', 'noeviction').catch(() => {}));
  const gauge = async () => {
    const text = await (await fetch(`${s.base}/metrics`, { headers: bearer() })).text();
    return /^fluke_redis_eviction_policy_ok (\d)$/m.exec(text)?.[1];
  };
  t.equal(await gauge(), '1', 'the gauge is 1 while the policy is noeviction');
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  const started = Date.now();
  const notReady = await waitFor(
    '/readyz to report the policy',
    async () => {
      const res = await fetch(`${s.base}/readyz`);
      return { status: res.status, body: (await res.json()) as { ready?: boolean; reason?: string } };
    },
    (r) => r.status === 503,
    20_000,
  );
  t.match(notReady.body, { ready: false, reason: /allkeys-lru.*noeviction/ }, 'the reason names the policy');
  t.ok(Date.now() - started < 20 * EVICTION_CHECK_MS + 5000, 'found within a few check intervals');
  t.equal(await gauge(), '0', 'fluke_redis_eviction_policy_ok 0');
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await waitFor(
    '/readyz ready again',
    async () => (await fetch(`${s.base}/readyz`)).status,
    (status) => status === 200,
    20_000,
  );
  t.equal(await gauge(), '1', 'back to 1 once fixed');
});

t.test('finding 10: /readyz answers 503 within a second while Redis is frozen', async (t) => {
  const s = await startServer(t, { readAccess: 'token' });
  t.equal((await fetch(`${s.base}/readyz`)).status, 200, 'ready first');
  s.redis.signal('SIGSTOP');
  // Whatever happens below, Redis must run again (teardown stops the server through it).
  t.teardown(() => s.redis.signal('SIGCONT'));
  try {
    const probes = await Promise.all(
      [0, 1, 2].map(async () => {
        const started = Date.now();
        const res = await fetch(`${s.base}/readyz`, { signal: AbortSignal.timeout(15_000) });
        return { status: res.status, body: await res.json(), ms: Date.now() - started };
      }),
    );
    for (const probe of probes) {
      t.equal(probe.status, 503, 'not ready');
      t.same(probe.body, {
        ready: false,
        reason: 'redis not answering',
        error: 'redis not answering',
        code: 'not_ready',
      });
      // The bound is READY_TIMEOUT_MS (1 s); the rest is headroom for two busy cores.
      t.ok(probe.ms < READY_TIMEOUT_MS + 2000, `answered in ${probe.ms} ms (< 3 s)`);
    }
  } finally {
    s.redis.signal('SIGCONT');
  }
  await waitFor(
    'ready after SIGCONT',
    async () => (await fetch(`${s.base}/readyz`)).status,
    (status) => status === 200,
    30_000,
  );
  t.pass('ready again once Redis resumes');
});
