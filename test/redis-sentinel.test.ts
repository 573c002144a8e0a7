/**
 * The Sentinel-backed client on a real quorum (testkit/redis-sentinel.ts): it and every duplicate
 * follow the master through a kill -9 failover and a planned one, the eviction check runs on the
 * master, and a client left on a demoted master reconnects on READONLY.
 */
import t from 'tap';
import { SINGLE_REDIS } from '../shared/config/redis-topology.js';
import { checkEvictionPolicy, createRedis, type RedisClient } from '../store/redis/client.js';
import { isReadOnlyError, SENTINEL_RETRY_MAX_MS, sentinelOptions } from '../store/redis/sentinel.js';
import { startRedis } from '../testkit/redis.js';
import { startRedisSentinel } from '../testkit/redis-sentinel.js';
import { eventually } from './helpers/gateway.js';

const sentinelConfig = (url: string, extra: Partial<typeof SINGLE_REDIS> = {}) => ({
  url,
  ...SINGLE_REDIS,
  sentinels: ['127.0.0.1:26379', '[::1]:26380'],
  master_name: 'mymaster',
  ...extra,
});

t.test('sentinelOptions: credentials, db and TLS from the url; null without Sentinels', async (t) => {
  t.equal(sentinelOptions({ url: 'redis://127.0.0.1:6379', ...SINGLE_REDIS }), null);
  const o = sentinelOptions(
    sentinelConfig('rediss://fluke:p%40ss@ignored.example:1/3', { sentinel_password: 'sp' }),
  );
  t.ok(o);
  t.same(o?.sentinels, [
    { host: '127.0.0.1', port: 26379 },
    { host: '::1', port: 26380 },
  ]);
  t.equal(o?.name, 'mymaster');
  t.equal(o?.username, 'fluke');
  t.equal(o?.password, 'p@ss', 'percent-decoded');
  t.equal(o?.db, 3);
  t.equal(o?.sentinelPassword, 'sp');
  t.same(o?.tls, {}, 'rediss: TLS to the master');
  t.equal(o?.enableTLSForSentinelMode, true);
  t.same(o?.sentinelTLS, {}, 'and to the Sentinels');
  t.equal(o?.failoverDetector, false, 'Sentinel closes a demoted master’s connections itself');
  t.equal(o?.sentinelRetryStrategy?.(1000), SENTINEL_RETRY_MAX_MS, 'retries forever, bounded delay');

  const plain = sentinelOptions(sentinelConfig('redis://127.0.0.1:6379'));
  t.equal(plain?.tls, undefined);
  t.equal(plain?.password, undefined);
  t.equal(plain?.db, undefined);
  t.equal(plain?.sentinelPassword, undefined);
  t.equal(plain?.reconnectOnError?.(new Error("READONLY You can't write against a read only replica.")), 1);
  t.equal(plain?.reconnectOnError?.(new Error('ERR something else')), false);
  t.ok(isReadOnlyError(new Error('READONLY x')));
});

const tcpPort = async (c: RedisClient) => Number(/tcp_port:(\d+)/.exec(await c.info('server'))?.[1]);

t.test('on a real quorum', async (t) => {
  const s = await startRedisSentinel({ replicas: 1 });
  t.teardown(() => s.stop());
  const config = {
    url: 'redis://127.0.0.1:1/0', // host:port unused with Sentinels
    ...SINGLE_REDIS,
    sentinels: s.sentinels,
    master_name: s.masterName,
  };
  const clients: RedisClient[] = [];
  const open = (extra = {}) => {
    const c = createRedis(config.url, { ...sentinelOptions(config), ...extra });
    clients.push(c);
    return c;
  };
  t.teardown(() => {
    for (const c of clients) c.disconnect();
  });
  const key = `${s.prefix}:k`;

  await t.test('the client and its duplicates reach the master; eviction is checked there', async (t) => {
    const redis = open();
    const dup = redis.duplicate();
    clients.push(dup);
    const master = await s.masterPort();
    t.equal(await tcpPort(redis), master);
    t.equal(await tcpPort(dup), master, 'a duplicate follows the master too');
    t.equal(await checkEvictionPolicy(dup), null);
    await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    t.match(await checkEvictionPolicy(dup), /maxmemory-policy is "allkeys-lru"/, 'the master’s policy');
    await redis.config('SET', 'maxmemory-policy', 'noeviction');
  });

  await t.test(
    'kill -9 of the master: the client and a duplicate carry on on the promoted one',
    async (t) => {
      const redis = open();
      const dup = redis.duplicate();
      clients.push(dup);
      await redis.set(key, 'before');
      await dup.wait(1, 2000); // the replica has it before the master dies
      const { killed, promoted } = await s.failover();
      t.not(promoted, killed);
      // Commands issued during the failover wait in the offline queue (maxRetriesPerRequest: null).
      await redis.set(key, 'after');
      t.equal(await dup.get(key), 'after', 'the duplicate reads the write on the same master');
      t.equal(await tcpPort(redis), promoted);
      t.equal(await tcpPort(dup), promoted);
      await s.restart(killed); // back as a replica of the new master, for the planned failovers
      const replica = createRedis(`redis://127.0.0.1:${killed}`);
      clients.push(replica);
      await eventually(
        () => replica.info('replication'),
        (i) => i.includes('master_link_status:up'),
        30_000,
        100,
      );
    },
  );

  /** SENTINEL FAILOVER once a synced replica exists; resolves to the new master's port. */
  const plannedFailover = async (before: number): Promise<number> => {
    const sentinel = createRedis(`redis://${s.sentinels[0]}`);
    clients.push(sentinel);
    await eventually(
      () =>
        sentinel.call('SENTINEL', 'FAILOVER', s.masterName).then(
          () => true,
          () => false, // NOGOODSLAVE until the former master is a synced replica
        ),
      (ok) => ok,
      30_000,
      500,
    );
    const after = await eventually(
      () => s.masterPort(),
      (p) => p !== before,
      30_000,
      100,
    );
    // Until the old master is told to replicate, writes there still succeed.
    const old = createRedis(`redis://127.0.0.1:${before}`);
    clients.push(old);
    await eventually(
      () => old.call('ROLE') as Promise<unknown[]>,
      (role) => role[0] === 'slave',
      30_000,
      100,
    );
    return after;
  };

  await t.test(
    'a planned failover: the demoted master’s clients move, writes land on the new one',
    async (t) => {
      const redis = open();
      const dup = redis.duplicate();
      clients.push(dup);
      const before = await tcpPort(redis);
      t.equal(await tcpPort(dup), before);
      const after = await plannedFailover(before);
      // Sentinel closes the demoted master's connections: both reconnect with no write issued.
      for (const c of [redis, dup]) {
        await eventually(
          () => tcpPort(c),
          (p) => p === after,
          30_000,
          100,
        );
      }
      const errors: string[] = [];
      await eventually(
        () =>
          redis.set(key, 'planned').then(
            () => true,
            (err: Error) => {
              errors.push(err.message);
              return false;
            },
          ),
        (ok) => ok,
        30_000,
        100,
      );
      t.same(errors, [], 'no write failed');
      t.equal(await dup.get(key), 'planned');
    },
  );
});

t.test('READONLY from a demoted master: the connection is dropped and made again', async (t) => {
  // What a provider that demotes without closing connections looks like: REPLICAOF under a client.
  const a = await startRedis();
  const b = await startRedis();
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const options = sentinelOptions(sentinelConfig(a.url)) ?? {};
  const redis = createRedis(a.url, { reconnectOnError: options.reconnectOnError ?? null });
  const admin = a.client();
  t.teardown(() => redis.disconnect());
  await redis.set(`${a.prefix}:k`, '1');
  let reconnects = 0;
  redis.on('reconnecting', () => reconnects++);
  await admin.call('REPLICAOF', '127.0.0.1', String(b.port));
  const err = await redis.set(`${a.prefix}:k`, '2').catch((e: Error) => e);
  t.match(err, { message: /^READONLY/ }, 'the write fails once, to its owner (not re-sent alone)');
  await eventually(
    async () => reconnects,
    (n) => n >= 1,
    10_000,
  );
  await admin.call('REPLICAOF', 'NO', 'ONE');
  t.equal(await redis.set(`${a.prefix}:k`, '3'), 'OK', 'writes again on the new connection');
});
