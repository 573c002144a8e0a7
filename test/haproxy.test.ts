/**
 * The shipped infra/haproxy/haproxy.cfg, tested: Debian's haproxy runs it with only its addresses
 * substituted (testkit/haproxy.ts), in front of two real gateway processes, a reconciler, Redis
 * and real agent processes that connect to the balancer.
 *
 * - Its health check (HTTP/1.1 with a Host header) passes: both gateways take agents.
 * - The gateway answers that check raw, and answers nothing to HTTP/1.0 or a Host-less request
 *   (why the config must say `ver HTTP/1.1 hdr Host`; docs/gateway.md).
 * - Client addresses: the config sends PROXY v2, the gateways trust it from the balancer
 *   (server.http.trusted_proxies), so a sender of bad tokens is throttled (429) by its own
 *   address while agents arriving through the same balancer keep connecting.
 * - kill -9 one gateway: haproxy logs it DOWN, every agent it held registers again through the
 *   other one and is checked again.
 *
 * Only conditions are awaited, with generous timeouts: process starts are slow on a loaded box.
 */
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { Keys } from '../shared/keys.js';
import { decodeRegistryEntry } from '../shared/registry-entry.js';
import {
  GATEWAY_AGENT_PORT,
  GATEWAY_HTTP_PORT,
  randomLoopbackHost,
  startHaproxy,
} from '../testkit/haproxy.js';
import { AGENT_TOKEN, sandbox, startSystem, waitFor } from '../testkit/system.js';
import { rawExchange, statusOf, upgradeRequest } from './helpers/raw-http.js';

const SLOW_MS = 120_000;
const AGENTS = ['web-01', 'web-02', 'web-03', 'web-04', 'web-05', 'web-06'];

/** The last state haproxy logged for a server ("UP"/"DOWN"), or null before any transition. */
function lastState(log: string, server: string): string | null {
  const re = new RegExp(`Server ${server.replace('/', '\\/')} is (UP|DOWN)`, 'g');
  return [...log.matchAll(re)].at(-1)?.[1] ?? null;
}

t.test('the shipped haproxy.cfg in front of two gateways', async (t) => {
  const lb = await startHaproxy({ gateways: 2 });
  t.teardown(() => lb.stop());
  const dir = sandbox(t);
  const sys = await startSystem(t, {
    files: {
      'site.fluke.hcl': `
task "site" {
  selector { match_labels = { role = "web" } }
  shell "index" {
    check   = "test -f ${dir}/index"
    command = "touch ${dir}/index"
  }
}
`,
    },
    inProcess: false,
    // Both the agents and haproxy reach the gateways from 127.0.0.1 here: trusting it lets the
    // PROXY header haproxy sends name the client.
    serverExtra: '  http { trusted_proxies = ["127.0.0.1"] }',
  });
  const keys = new Keys(sys.redis.prefix);
  const redis = sys.redis.client();
  const [hostA = '', hostB = ''] = lb.gatewayHosts;

  sys.spawnRole('reconciler');
  const gatewayA = sys.spawnRole('gateway', {
    host: hostA,
    agentsPort: GATEWAY_AGENT_PORT,
    httpPort: GATEWAY_HTTP_PORT,
  });
  sys.spawnRole('gateway', { host: hostB, agentsPort: GATEWAY_AGENT_PORT, httpPort: GATEWAY_HTTP_PORT });

  for (const host of [hostA, hostB]) {
    await waitFor(
      `gateway ${host} ready`,
      async () => (await fetch(`http://${host}:${GATEWAY_HTTP_PORT}/readyz`)).status,
      (s) => s === 200,
      SLOW_MS,
    );
  }
  await waitFor(
    'haproxy to count both gateways UP',
    async () => [1, 2].map((n) => lastState(lb.output(), `gateways_agents/gateway-${n}`)),
    (states) => states.every((s) => s !== 'DOWN'),
    SLOW_MS,
  );

  await t.test(
    'health checks, raw: HTTP/1.1 with Host answers; HTTP/1.0 or no Host never does',
    async (t) => {
      for (const path of ['/healthz', '/readyz']) {
        for (const host of ['Host: localhost', 'Host:']) {
          const ok = await rawExchange(hostA, GATEWAY_HTTP_PORT, `GET ${path} HTTP/1.1\r\n${host}\r\n\r\n`);
          t.equal(statusOf(ok.text), 200, `${path} HTTP/1.1 "${host}"`);
        }
      }
      // What uWebSockets.js 20 does with them: nothing, then a close at its idle timeout (~10 s).
      const silent = ['GET /readyz HTTP/1.0\r\n\r\n', 'GET /readyz HTTP/1.1\r\n\r\n'];
      const answers = await Promise.all(
        silent.map((request) => rawExchange(hostA, GATEWAY_HTTP_PORT, request, { untilClosed: true })),
      );
      answers.forEach((answer, i) => {
        t.same(answer, { text: '', closed: true }, `${JSON.stringify(silent[i])}: no answer`);
      });
    },
  );

  const agents = await Promise.all(
    AGENTS.map((name) => sys.startAgent(name, { role: 'web' }, { serverUrl: lb.agentsUrl })),
  );
  const entries = async () =>
    Promise.all(AGENTS.map(async (n) => decodeRegistryEntry(await redis.hgetall(keys.agent(n)))));
  const before = await waitFor(
    'every agent registered through haproxy, on both gateways',
    entries,
    (es) => es.every((e) => e !== null) && new Set(es.map((e) => e?.gateway_id)).size === 2,
    SLOW_MS,
  );
  t.pass(`spread: ${JSON.stringify(before.map((e) => e?.gateway_id.slice(-6)))}`);

  await t.test('a bad-token sender is throttled by its own address, not the balancer', async (t) => {
    const attacker = randomLoopbackHost();
    const front = new URL(lb.agentsUrl).hostname;
    const bad = upgradeRequest('not-the-token');
    // Each gateway keeps its own buckets (burst failed_upgrade_burst = 10): at most ~20 refusals.
    const seen = await waitFor(
      'the bad-token sender to get 429',
      async () =>
        statusOf((await rawExchange(front, GATEWAY_AGENT_PORT, bad, { localAddress: attacker })).text),
      (status) => status === 429,
      SLOW_MS,
    );
    t.equal(seen, 429, 'throttled');
    const again = await rawExchange(front, GATEWAY_AGENT_PORT, upgradeRequest(AGENT_TOKEN), {
      localAddress: attacker,
    });
    t.equal(statusOf(again.text), 429, 'its address stays throttled, whatever token it sends next');
    // Through the same balancer, from another address: a good token still upgrades, on both
    // gateways (leastconn alternates between them for successive short connections).
    for (let i = 0; i < 4; i++) {
      const good = await rawExchange(front, GATEWAY_AGENT_PORT, upgradeRequest(AGENT_TOKEN));
      t.equal(statusOf(good.text), 101, `good agent ${i + 1} upgrades`);
    }
  });

  const killedAt = Date.now();
  const logBefore = lb.output().length;
  // Which id is gateway A's shows in which agents move: every agent ends on the survivor.
  gatewayA.child.kill('SIGKILL');
  await gatewayA.exited;

  const after = await waitFor(
    'every agent registered again, all on the surviving gateway',
    entries,
    (es) => es.every((e) => e !== null) && new Set(es.map((e) => e?.gateway_id)).size === 1,
    SLOW_MS,
  );
  t.comment(`all agents registered ${Date.now() - killedAt} ms after the kill`);
  const survivor = after[0]?.gateway_id ?? '';
  const moved = AGENTS.filter((_, i) => before[i]?.gateway_id !== survivor);
  t.ok(
    moved.length > 0 && moved.length < AGENTS.length,
    `${moved.length} agents moved from the dead gateway`,
  );
  t.ok(
    before.some((e) => e?.gateway_id === survivor),
    'the survivor is the gateway that held the others',
  );
  for (const name of moved) {
    const i = AGENTS.indexOf(name);
    t.ok((after[i]?.connected_at ?? 0) >= killedAt, `${name} registered again after the kill`);
  }

  await waitFor(
    'a connect check of every moved agent after the kill, read through haproxy',
    async () =>
      Promise.all(
        moved.map(async (name) => {
          const res = await fetch(`${lb.httpUrl}/api/v1/events?agent=${name}&task=site`);
          const { events } = (await res.json()) as { events: FlukeEvent[] };
          return events.some(
            (e) => e.kind === 'task_run' && e.trigger === 'connect' && Date.parse(e.started_at) >= killedAt,
          );
        }),
      ),
    (checked) => checked.every(Boolean),
    SLOW_MS,
  );
  t.pass(`every moved agent was checked again (${Date.now() - killedAt} ms after the kill)`);

  const down = await waitFor(
    'haproxy to log the dead gateway DOWN',
    async () => lb.output().slice(logBefore),
    (log) => /Server gateways_agents\/gateway-1 is DOWN/.test(log),
    SLOW_MS,
  );
  t.match(down, /Server gateways_http\/gateway-1 is DOWN|Server gateways_agents\/gateway-1 is DOWN/);
  t.notMatch(down, /Server gateways_agents\/gateway-2 is DOWN/, 'the live gateway stays UP');
  for (const a of agents) t.equal(a.child.exitCode, null, `${a.name} still running`);
});
