/**
 * The gateway's agent endpoint with `server.http.trusted_proxies`: the failed-upgrade throttle
 * (429) keys on the address a trusted peer names (PROXY v2 header, X-Forwarded-For), and on the
 * peer itself when the peer is not trusted. A real gateway on a real Redis, raw sockets.
 */
import t from 'tap';
import { startRedis } from '../testkit/redis.js';
import { startGateway, TOKEN } from './helpers/gateway.js';
import { proxyV2Header, rawExchange, statusOf, upgradeRequest } from './helpers/raw-http.js';

const BURST = 3;
const limits = { failed_upgrade_burst: BURST, failed_upgrade_rate: 1 };

t.test('client addresses at the agent endpoint', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());

  const status = async (port: number, request: string | Buffer) =>
    statusOf((await rawExchange('127.0.0.1', port, request)).text);
  const xff = (address: string) => [`X-Forwarded-For: ${address}`];

  await t.test('trusted peer: X-Forwarded-For names the client', async (t) => {
    const gw = await startGateway(redis, {
      config: { http: { trusted_proxies: ['127.0.0.1'] }, agent_limits: limits },
    });
    t.teardown(() => gw.stop());
    for (let i = 0; i < BURST; i++) {
      t.equal(
        await status(gw.port, upgradeRequest('wrong', xff('198.51.100.7'))),
        401,
        `bad token ${i + 1}: 401`,
      );
    }
    t.equal(
      await status(gw.port, upgradeRequest(TOKEN, xff('198.51.100.7'))),
      429,
      'its address is throttled',
    );
    t.equal(
      await status(gw.port, upgradeRequest(TOKEN, xff('198.51.100.8'))),
      101,
      'another client upgrades',
    );
    t.equal(await status(gw.port, upgradeRequest(TOKEN)), 101, 'the balancer itself (no header) upgrades');
    // A hop the client wrote itself, left of the one the balancer appended, changes nothing.
    t.equal(
      await status(gw.port, upgradeRequest(TOKEN, xff('203.0.113.50, 198.51.100.7'))),
      429,
      'a forged leftmost hop does not escape the throttle',
    );
    const refused = gw.logs.find((l) => l.msg === 'agent upgrade refused');
    t.equal(refused?.remote, '198.51.100.7', 'the refusal is logged with the client address');
  });

  await t.test('trusted peer: a PROXY v2 header names the client', async (t) => {
    const gw = await startGateway(redis, {
      config: { http: { trusted_proxies: ['127.0.0.0/8'] }, agent_limits: limits },
    });
    t.teardown(() => gw.stop());
    const via = (src: string, token: string) =>
      Buffer.concat([proxyV2Header(src, 40_000), Buffer.from(upgradeRequest(token))]);
    for (let i = 0; i < BURST; i++) t.equal(await status(gw.port, via('203.0.113.9', 'wrong')), 401);
    t.equal(await status(gw.port, via('203.0.113.9', TOKEN)), 429, 'its address is throttled');
    t.equal(await status(gw.port, via('203.0.113.10', TOKEN)), 101, 'another client upgrades');
    t.equal(await status(gw.port, upgradeRequest(TOKEN)), 101, 'the balancer itself upgrades');
  });

  await t.test('untrusted peer (the default): headers are ignored, the peer is the client', async (t) => {
    const gw = await startGateway(redis, { config: { agent_limits: limits } });
    t.teardown(() => gw.stop());
    for (let i = 0; i < BURST; i++) {
      t.equal(await status(gw.port, upgradeRequest('wrong', xff('198.51.100.7'))), 401);
    }
    t.equal(
      await status(gw.port, upgradeRequest(TOKEN, xff('198.51.100.8'))),
      429,
      'a claimed address does not escape the throttle of the real one',
    );
    t.equal(
      await status(
        gw.port,
        Buffer.concat([proxyV2Header('203.0.113.11', 40_000), Buffer.from(upgradeRequest(TOKEN))]),
      ),
      429,
      'nor does a PROXY header',
    );
  });
});
