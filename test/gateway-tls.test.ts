/**
 * wss:// with a self-signed CA made by the openssl CLI: a client trusting the CA registers; one
 * that does not, and a plain ws:// client against the TLS port, never get a socket.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startRedis } from '../testkit/redis.js';
import { startGateway, TestAgent } from './helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'fluke-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=Fluke Test CA');
ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
ssl(
  'x509',
  '-req',
  '-in',
  'server.csr',
  '-CA',
  'ca.crt',
  '-CAkey',
  'ca.key',
  '-CAcreateserial',
  '-out',
  'server.crt',
  '-days',
  '1',
  '-extfile',
  'san.ext',
);
const ca = readFileSync(join(dir, 'ca.crt'));

const r = await startRedis();
t.teardown(() => r.stop());
const gw = await startGateway(r, {
  gatewayId: 'gw-tls',
  config: { tls: { enabled: true, cert_file: join(dir, 'server.crt'), key_file: join(dir, 'server.key') } },
});
t.teardown(() => gw.stop());

t.test('a client trusting the CA registers over wss://', async (t) => {
  t.match(gw.url, /^wss:/);
  const agent = new TestAgent(gw.url, { ca });
  t.teardown(() => agent.close());
  const reg = await agent.register('tls-01');
  t.equal(reg.gateway_id, 'gw-tls');
  t.equal(await r.client().exists(gw.keys.agent('tls-01')), 1);
});

t.test('a client without the CA is refused by certificate verification', async (t) => {
  const agent = new TestAgent(gw.url);
  const err = await new Promise<Error>((resolve) => agent.ws.once('error', resolve));
  t.match(err.message, /self[- ]signed|unable to verify|certificate/i);
  await agent.closed;
});

t.test('a plain ws:// client against the TLS port gets no socket', async (t) => {
  const agent = new TestAgent(gw.url.replace('wss:', 'ws:'));
  await t.rejects(agent.opened);
  await agent.closed;
});
