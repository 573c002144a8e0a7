/**
 * Findings of the wire fuzzer (testkit/fuzz/, bench/fuzz.ts), one test each, on a real gateway
 * and a private Redis: what the fuzzer found taken that must be refused, now refused.
 */
import t from 'tap';
import { startRedis } from '../testkit/redis.js';
import { eventually, registerMessage, startGateway, TestAgent } from './helpers/gateway.js';

const r = await startRedis();
t.teardown(() => r.stop());
const redis = r.client();
const gw = await startGateway(r, { gatewayId: 'gw-fuzz-findings' });
t.teardown(() => gw.stop());

/** Registered (the name is in the agent index) or refused (closed); which one came first. */
async function registerOutcome(name: string, labels: Record<string, string> = {}) {
  const a = new TestAgent(gw.url);
  await a.opened;
  a.send(registerMessage(name, labels));
  const answer = await Promise.race([
    a.next('registered').then(() => 'registered' as const),
    a.closed.then((c) => `closed ${c.code}` as const),
  ]);
  await a.close();
  return answer;
}

t.test('invalid UTF-8 in a text frame is dropped without a close frame (1006), writes nothing', async (t) => {
  // uWebSockets.js checks text frames itself and drops the socket (no close frame, so no 4400
  // and no reason); the gateway's own UTF-8 check only sees frames uWS let through.
  await redis.flushall();
  for (const bytes of [
    [0x7b, 0xff, 0x7d],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xe2, 0x82],
  ]) {
    const a = new TestAgent(gw.url);
    await a.opened;
    a.ws.send(Buffer.from(bytes), { binary: false });
    const c = await a.closed;
    t.ok(
      c.code === 1006 || c.code === 4400 || c.code === 1007,
      `${Buffer.from(bytes).toString('hex')}: closed ${c.code}`,
    );
  }
  t.same(await redis.keys('*{a:*'), [], 'no agent key written');
  const ok = new TestAgent(gw.url);
  t.ok((await ok.register('fz-after-utf8')).session_id, 'the gateway still registers an agent');
  await ok.close();
});

t.test(
  'a register whose name the agent config refuses (control characters, ANSI, spaces, slashes) is refused',
  async (t) => {
    for (const name of ['web\u001b[31m01', 'a\u0000b', 'web 01', '../etc', '-leading', '\u202eweb']) {
      t.not(await registerOutcome(name), 'registered', `name ${JSON.stringify(name)} is refused`);
    }
  },
);

t.test('a register with control characters in a label is refused', async (t) => {
  const ansi = await registerOutcome('fz-label-01', { role: 'web\u001b[2J' });
  t.not(ansi, 'registered', 'ANSI in a label value is refused');
  const nul = await registerOutcome('fz-label-02', { 'ro\u0000le': 'web' });
  t.not(nul, 'registered', 'NUL in a label key is refused');
});

t.test('output for an execution nobody dispatched is not stored in Redis', async (t) => {
  const a = new TestAgent(gw.url);
  await a.register('fz-output-01');
  a.send({
    type: 'output',
    execution_id: 'never-dispatched-1',
    task: 't',
    step: 's',
    phase: 'apply',
    stream: 'stdout',
    line: 'forged',
  });
  let closed = false;
  void a.closed.then(() => {
    closed = true;
  });
  // Absence has no event: wait (at most 5 s) for the line to land, or the socket to close.
  const stored = await eventually(
    () => redis.keys('*outbuf:never-dispatched-1'),
    (k) => k.length > 0 || closed,
    5000,
  ).catch(() => [] as string[]);
  t.same(stored, [], 'nothing stored for an execution nobody dispatched');
  await a.close();
});
