/**
 * Process start-up rules: an evicting Redis is refused with a clear message, the memory event
 * store is refused outside the all-in-one server, and the all-in-one server works on it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { startServices } from '../bin/services.js';
import { parseServerConfig } from '../shared/config/load.js';
import { freePort, startRedis } from '../testkit/redis.js';
import { serverHcl } from '../testkit/system.js';

const silent = pino({ level: 'silent' });

async function configFor(redisUrl: string, prefix: string, eventStore: 'redis' | 'memory') {
  const source = serverHcl({
    agentsPort: await freePort(),
    httpPort: await freePort(),
    redisUrl,
    prefix,
    repo: '/nonexistent/repo',
    pollInterval: '60s',
    heartbeat: '1s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore,
  });
  return parseServerConfig('server.hcl', source, {});
}

t.test('start-up refuses a Redis that may evict keys', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const admin = redis.client();
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  const dir = mkdtempSync(join(tmpdir(), 'fluke-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = await configFor(redis.url, redis.prefix, 'redis');
  await t.rejects(startServices(config, 'server', { dataDir: dir, logger: silent }), {
    message: /maxmemory-policy is "allkeys-lru".*noeviction/,
  });
  t.same(await admin.keys(`*${redis.prefix}*`), [], 'nothing was written');
});

t.test('the memory event store is only for the all-in-one server; stale git caches go', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const dir = mkdtempSync(join(tmpdir(), 'fluke-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = await configFor(redis.url, redis.prefix, 'memory');
  await t.rejects(startServices(config, 'gateway', { dataDir: dir, logger: silent }), {
    message: /"memory" works only for the all-in-one/,
  });
  await t.rejects(startServices(config, 'reconciler', { dataDir: dir, logger: silent }), {
    message: /"memory" works only for the all-in-one/,
  });
  mkdirSync(join(dir, 'git-cache-999999999'));
  mkdirSync(join(dir, `git-cache-${process.pid}`));
  const server = await startServices(config, 'server', { dataDir: dir, logger: silent });
  t.notOk(existsSync(join(dir, 'git-cache-999999999')), 'the cache of a dead process is removed');
  t.ok(existsSync(join(dir, `git-cache-${process.pid}`)), 'a live process keeps its cache');
  t.teardown(() => server.close());
  const res = await fetch(`http://127.0.0.1:${server.ports.http}/api/v1/events`);
  t.same(await res.json(), { events: [], next_cursor: null }, 'the server answers from its memory store');
});
