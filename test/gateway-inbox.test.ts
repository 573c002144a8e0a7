/**
 * A gateway's inbox stream (store/inbox/gateway-inbox.ts) on a real Redis: in order, nothing lost
 * while the gateway is too busy to read (the case that made pub/sub drop instructions), only to
 * gateways that announced themselves, and reading resumes after a Redis restart.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { INBOX_BATCH_TEXTS, InboxBatcher, InboxReader, sendToGateway } from '../store/inbox/gateway-inbox.js';
import { startRedis } from '../testkit/redis.js';
import { waitFor } from '../testkit/system.js';

const logger = createLogger({ level: 'error', format: 'json' }, 'test');
const redis = await startRedis();
t.teardown(() => redis.stop());
const keys = new Keys(redis.prefix);
const root = fileURLToPath(new URL('..', import.meta.url));

t.test('a busy gateway loses nothing: 40 MB arrive in order after it stalls', async (t) => {
  const received: number[] = [];
  let stalled = false;
  const reader = new InboxReader(
    redis.client(),
    keys.gatewayInbox('busy'),
    (text) => {
      if (!stalled) {
        stalled = true;
        // The gateway's event loop is busy (results, sockets) for 3 s while instructions pour in:
        // with pub/sub, Redis would cut this subscriber off past 32 MB of unread messages.
        const until = Date.now() + 3000;
        while (Date.now() < until) {}
      }
      received.push(Number(text.slice(0, 8)));
    },
    logger,
  );
  await reader.start();
  t.teardown(() => reader.stop());
  // Another process writes 5000 messages of 8 KB as fast as it can.
  const sender = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `
      import { Redis } from 'ioredis';
      import { sendToGateway } from './store/inbox/gateway-inbox.ts';
      import { Keys } from './shared/keys.ts';
      const r = new Redis(${JSON.stringify(redis.url)});
      const keys = new Keys(${JSON.stringify(redis.prefix)});
      const pad = 'x'.repeat(8192);
      const sends = [];
      for (let i = 0; i < 5000; i++) sends.push(sendToGateway(r, keys, 'busy', String(i).padStart(8, '0') + pad));
      await Promise.all(sends);
      r.disconnect();
      `,
    ],
    { cwd: root, stdio: 'inherit' },
  );
  const code = await new Promise((r) => sender.on('exit', r));
  t.equal(code, 0, 'sender finished');
  await waitFor(
    'every message',
    async () => received.length,
    (n) => n >= 5000,
    60_000,
  );
  t.equal(received.length, 5000);
  t.ok(
    received.every((n, i) => n === i),
    'in order, none missing or repeated',
  );
});

t.test('only a gateway that announced itself lately gets instructions', async (t) => {
  const c = redis.client();
  t.notOk(await sendToGateway(c, keys, 'ghost', 'hello', Date.now() - 30_000), 'never announced');
  await c.hset(keys.gateways(), 'old', String(Date.now() - 60_000));
  t.notOk(await sendToGateway(c, keys, 'old', 'hello', Date.now() - 30_000), 'silent too long');
  await c.hset(keys.gateways(), 'live', String(Date.now()));
  t.ok(await sendToGateway(c, keys, 'live', 'hello', Date.now() - 30_000));
  t.equal(await c.xlen(keys.gatewayInbox('live')), 1);
  t.ok((await c.pttl(keys.gatewayInbox('live'))) > 0, 'an inbox expires when nobody writes to it');
  t.equal(await c.exists(keys.gatewayInbox('ghost')), 0, 'nothing written for the ghost');
});

t.test('sends of one turn share stream entries, arrive in order, and answer per gateway', async (t) => {
  const c = redis.client();
  await c.hset(keys.gateways(), 'fan-a', String(Date.now()), 'fan-b', String(Date.now()));
  await c.hset(keys.gateways(), 'fan-stale', String(Date.now() - 60_000));
  const received: Record<string, string[]> = { 'fan-a': [], 'fan-b': [] };
  const readers = ['fan-a', 'fan-b'].map(
    (gw) =>
      new InboxReader(redis.client(), keys.gatewayInbox(gw), (text) => received[gw]?.push(text), logger),
  );
  for (const r of readers) await r.start();
  t.teardown(() => Promise.all(readers.map((r) => r.stop())));
  const batcher = new InboxBatcher(c, keys, 30_000);
  const count = 3 * INBOX_BATCH_TEXTS + 5;
  const texts = Array.from({ length: count }, (_, i) => `m-${String(i).padStart(4, '0')}`);
  const outcomes = await Promise.all([
    ...texts.map((text) => batcher.send('fan-a', text)),
    batcher.send('fan-b', 'only-b'),
    batcher.send('fan-stale', 'never'),
  ]);
  t.same(outcomes, [...texts.map(() => true), true, false], 'a stale gateway is refused, per send');
  t.equal(await c.xlen(keys.gatewayInbox('fan-a')), 4, `${count} texts in ${INBOX_BATCH_TEXTS}-text entries`);
  t.equal(await c.exists(keys.gatewayInbox('fan-stale')), 0);
  await waitFor(
    'all texts read',
    async () => received['fan-a']?.length ?? 0,
    (n) => n === count,
    10_000,
  );
  t.same(received['fan-a'], texts, 'in order, none lost');
  await waitFor(
    'fan-b read',
    async () => received['fan-b']?.length ?? 0,
    (n) => n === 1,
    10_000,
  );
  t.same(received['fan-b'], ['only-b']);
});

t.test('reading resumes after Redis restarts, and says so', async (t) => {
  const received: string[] = [];
  let recovered = 0;
  const reader = new InboxReader(
    redis.client(),
    keys.gatewayInbox('restart'),
    (text) => received.push(text),
    logger,
    () => recovered++,
    200,
  );
  await reader.start();
  t.teardown(() => reader.stop());
  const c = redis.client();
  await sendToGateway(c, keys, 'restart', 'before');
  await waitFor(
    'before',
    async () => received.length,
    (n) => n === 1,
    10_000,
  );
  await redis.kill();
  await redis.restart();
  await waitFor(
    'recovered',
    async () => recovered,
    (n) => n >= 1,
    20_000,
  );
  await waitFor(
    'a write after the restart',
    () => sendToGateway(c, keys, 'restart', 'after').catch(() => false),
    (ok) => ok === true,
    10_000,
  );
  await waitFor(
    'after',
    async () => received.length,
    (n) => n === 2,
    10_000,
  );
  t.same(received, ['before', 'after']);
});
