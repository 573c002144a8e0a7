/**
 * `server.http.trusted_proxies` and the client address behind a balancer (shared/client-address.ts):
 * the pure rule with literals, the config loader's checks with file:line, and the native uWS build
 * reporting a PROXY v2 source on a raw socket (what the gateway's listeners rely on).
 */

import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { mountRouter } from '../console/http-server.js';
import { Router } from '../console/router.js';
import { type us_listen_socket, uWS } from '../gateway/uws.js';
import { clientAddress, proxyEntryProblem, trustedProxies } from '../shared/client-address.js';
import { ConfigError } from '../shared/config/config-error.js';
import { parseServerConfig } from '../shared/config/load.js';
import { root } from '../testkit/system.js';
import { proxyV2Header } from './helpers/raw-http.js';

const lb = trustedProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8']);

t.test('no trusted proxies (the default): the peer, whatever it claims', async (t) => {
  const none = trustedProxies([]);
  t.equal(none.empty, true);
  t.equal(clientAddress('10.1.1.1', '203.0.113.9', '198.51.100.1', none), '10.1.1.1');
});

t.test('an untrusted peer cannot name another address', async (t) => {
  t.equal(clientAddress('203.0.113.5', '198.51.100.1', '198.51.100.2', lb), '203.0.113.5');
});

t.test('a trusted peer: PROXY v2 source first, then X-Forwarded-For, then itself', async (t) => {
  t.equal(clientAddress('10.0.0.2', '203.0.113.9', '198.51.100.1', lb), '203.0.113.9', 'PROXY v2');
  t.equal(clientAddress('10.0.0.2', '', '198.51.100.1', lb), '198.51.100.1', 'X-Forwarded-For');
  t.equal(clientAddress('10.0.0.2', '', '', lb), '10.0.0.2', 'neither: a health check');
  t.equal(clientAddress('192.168.1.7', '', '', lb), '192.168.1.7', 'single address entry');
  t.equal(clientAddress('192.168.1.8', '198.51.100.1', '', lb), '192.168.1.8', 'outside the entry');
});

t.test('X-Forwarded-For is read right to left, skipping trusted hops', async (t) => {
  // The client wrote "1.2.3.4" itself; our balancers appended the rest.
  t.equal(clientAddress('10.0.0.2', '', '1.2.3.4, 198.51.100.1, 10.9.9.9', lb), '198.51.100.1');
  t.equal(clientAddress('10.0.0.2', '', '10.0.0.3, 10.0.0.4', lb), '10.0.0.3', 'all trusted: leftmost');
  t.equal(clientAddress('10.0.0.2', '', 'junk, 10.0.0.4', lb), '10.0.0.4', 'malformed hop: last trusted');
  t.equal(clientAddress('10.0.0.2', '', 'junk', lb), '10.0.0.2', 'malformed only: the peer');
  t.equal(clientAddress('10.0.0.2', '', ' 2001:db8::1 ,', lb), '2001:db8::1', 'IPv6 hop, spaces');
});

t.test('IPv6 and IPv4-mapped peers (a dual-stack listener)', async (t) => {
  t.equal(clientAddress('fd00::5', '', '198.51.100.1', lb), '198.51.100.1');
  t.equal(clientAddress('::ffff:10.0.0.2', '', '198.51.100.1', lb), '198.51.100.1');
  // uWS writes IPv6 peers in full.
  t.equal(clientAddress('fd00:0000:0000:0000:0000:0000:0000:0005', '', '198.51.100.1', lb), '198.51.100.1');
  t.equal(clientAddress('not-an-ip', '', '198.51.100.1', lb), 'not-an-ip');
});

t.test('entries: addresses and CIDR ranges, anything else refused', async (t) => {
  for (const ok of ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', '0.0.0.0/0', '::/0']) {
    t.equal(proxyEntryProblem(ok), null, ok);
  }
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'lb.example.com', '10.0.0.0/8/1', '10.0.0.0/x', '']) {
    t.match(proxyEntryProblem(bad), /trusted_proxies|not an IP|prefix length/, bad);
  }
  t.throws(() => trustedProxies(['nope']), /trusted_proxies: "nope" is not an IP address/);
});

const SERVER = (http: string) =>
  `server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n  http {\n    ${http}\n  }\n}\n`;

t.test('config: server.http.trusted_proxies, default empty', async (t) => {
  const plain = await parseServerConfig('s.hcl', SERVER('allowed_hosts = ["*"]'), {});
  t.same(plain.http.trusted_proxies, []);
  const cfg = await parseServerConfig('s.hcl', SERVER('trusted_proxies = ["10.0.0.0/8", "::1"]'), {});
  t.same(cfg.http.trusted_proxies, ['10.0.0.0/8', '::1']);
});

t.test('config: a bad entry is refused with file:line', async (t) => {
  const err = await parseServerConfig(
    'bad.hcl',
    SERVER('trusted_proxies = ["10.0.0.0/8", "lb.local"]'),
    {},
  ).catch((e: unknown) => e);
  t.type(err, ConfigError);
  const hit = (err as ConfigError).errors.find((e) => e.field === 'server.http.trusted_proxies');
  t.match(hit?.message, /"lb\.local" is not an IP address or CIDR range/);
  t.equal(hit?.line, 6);
  t.equal(hit?.file, 'bad.hcl');
});

t.test('this uWS build reads a PROXY v2 header and reports its source', async (t) => {
  const app = uWS.App().get('/*', (res) => {
    const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
    const proxied = Buffer.from(res.getProxiedRemoteAddressAsText()).toString();
    res.end(`${peer} ${proxied}`);
  });
  const socket = await new Promise<us_listen_socket>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('cannot listen')))),
  );
  t.teardown(() => uWS.us_listen_socket_close(socket));
  const port = uWS.us_socket_local_port(socket as unknown as Parameters<typeof uWS.us_socket_local_port>[0]);
  const ask = (prefix: Buffer) =>
    new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () =>
        s.end(Buffer.concat([prefix, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')])),
      );
      let out = '';
      s.on('data', (d: Buffer) => {
        out += d.toString();
        const [head = '', body = ''] = out.split('\r\n\r\n');
        const length = /content-length: (\d+)/i.exec(head)?.[1];
        if (length !== undefined && Buffer.byteLength(body) >= Number(length)) {
          s.destroy();
          resolve(body);
        }
      });
      s.on('error', reject);
    });
  t.equal(await ask(proxyV2Header('203.0.113.9', 5555)), '127.0.0.1 203.0.113.9', 'with a header');
  t.equal(await ask(Buffer.alloc(0)), '127.0.0.1 ', 'without one: empty');
});

t.test('with the ws fallback, trusted_proxies is refused at start, clearly', async (t) => {
  const script = `
    const { createAgentEndpoint } = await import('./gateway/agent-endpoint.ts');
    const { trustedProxies } = await import('./shared/client-address.ts');
    try {
      createAgentEndpoint({ tls: null, maxPayloadBytes: 1024, idleTimeoutSeconds: 10, maxBackpressureBytes: 1024,
        handlers: {}, logger: {}, trustedProxies: trustedProxies(['10.0.0.0/8']) });
      console.log('accepted');
    } catch (err) { console.log(err.message); }`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, UWS_USE_FALLBACK: '1' },
    encoding: 'utf8',
  });
  t.match(
    out,
    /server\.http\.trusted_proxies needs the native uWebSockets\.js binary .* the ws fallback loaded/,
  );
});

t.test('the console sees the client address a trusted balancer names', async (t) => {
  const serve = async (trusted: string[]) => {
    const router = new Router().get('/whoami', (req) => ({ status: 200, json: { remote: req.remote } }));
    const app = uWS.App();
    mountRouter(app, {
      router,
      maxBodyBytes: 1024,
      logger: pino({ level: 'silent' }),
      trustedProxies: trustedProxies(trusted),
    });
    const socket = await new Promise<us_listen_socket>((resolve, reject) =>
      app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('cannot listen')))),
    );
    t.teardown(() => uWS.us_listen_socket_close(socket));
    const port = uWS.us_socket_local_port(
      socket as unknown as Parameters<typeof uWS.us_socket_local_port>[0],
    );
    return async (headers: Record<string, string> = {}) => {
      const res = await fetch(`http://127.0.0.1:${port}/whoami`, { headers });
      return ((await res.json()) as { remote: string }).remote;
    };
  };
  const trusting = await serve(['127.0.0.1']);
  t.equal(await trusting({ 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7', 'trusted: X-Forwarded-For');
  t.equal(await trusting(), '127.0.0.1', 'trusted, no header: the peer');
  const plain = await serve([]);
  t.equal(await plain({ 'x-forwarded-for': '198.51.100.7' }), '127.0.0.1', 'untrusted: the peer');
});
