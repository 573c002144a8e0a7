/**
 * Results are acked only once a replica has them (store/redis/replica-wait.ts, the forwarder's
 * `replicas` port), on a real master + replica watched by Sentinels: a replica that stops acking
 * (SIGSTOP) leaves the batch unacknowledged (the agent re-sends), and the re-send is enqueued again.
 */
import t from 'tap';
import { ResultForwarder, type ResultSource } from '../gateway/result-forwarder.js';
import { SINGLE_REDIS } from '../shared/config/redis-topology.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { openQueue } from '../store/queues/queues.js';
import { createRedis } from '../store/redis/client.js';
import { canWaitForReplicas, connectedReplicas, replicaWait } from '../store/redis/replica-wait.js';
import { sentinelOptions } from '../store/redis/sentinel.js';
import { startRedis } from '../testkit/redis.js';
import { startRedisSentinel } from '../testkit/redis-sentinel.js';
import { eventually, taskResultMessage } from './helpers/gateway.js';

const logger = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

t.test('connectedReplicas reads INFO replication of a master only', async (t) => {
  t.equal(connectedReplicas('# Replication\r\nrole:master\r\nconnected_slaves:2\r\n'), 2);
  t.equal(connectedReplicas('# Replication\r\nrole:master\r\nconnected_slaves:0\r\n'), 0);
  t.equal(connectedReplicas('# Replication\r\nrole:slave\r\nconnected_slaves:1\r\n'), 0);
  t.equal(connectedReplicas('garbage'), 0);
});

t.test('no replica: nothing to wait for, answered without WAIT', async (t) => {
  const r = await startRedis();
  t.teardown(() => r.stop());
  const client = createRedis(r.url);
  t.teardown(() => client.disconnect());
  t.ok(canWaitForReplicas(client));
  const wait = replicaWait(client, { timeoutMs: 3000 });
  await client.set(`${r.prefix}:x`, '1');
  const started = Date.now();
  t.same(await wait.confirm(), { ok: true, replicas: 0 });
  t.ok(Date.now() - started < 2500, 'well under the WAIT timeout');
});

t.test('a master with a replica, behind Sentinels', async (t) => {
  const s = await startRedisSentinel({ replicas: 1 });
  t.teardown(() => s.stop());
  const config = {
    url: 'redis://127.0.0.1:1',
    ...SINGLE_REDIS,
    sentinels: s.sentinels,
    master_name: s.masterName,
  };
  const client = createRedis(config.url, sentinelOptions(config) ?? {});
  t.teardown(() => client.disconnect());
  const keys = new Keys(s.prefix);
  const queue = openQueue(QUEUE_NAMES.results, client, keys, { defaults: null });
  t.teardown(() => queue.close());
  const replica = s.dataPorts.find((p) => p !== s.dataPorts[0]) as number;
  const unreplicated: number[] = [];
  const forwarder = new ResultForwarder({
    queue,
    gatewayId: 'g1',
    timeoutMs: 5000,
    maxPending: 1000,
    logger,
    replicas: replicaWait(client, { timeoutMs: 300, refreshMs: 60_000 }),
    onUnreplicated: (u) => unreplicated.push(u.count),
  });
  const acks: string[] = [];
  const src: ResultSource = { agent: 'a1', sessionId: 's1', ack: (ids) => acks.push(...ids) };
  const jobs = async () => (await queue.getJobCounts('waiting'))['waiting'] ?? 0;

  forwarder.push(src, taskResultMessage('i-1', 'r-1'));
  await forwarder.idle();
  t.same(acks, ['r-1'], 'acked once the replica has it');
  t.equal(await jobs(), 1);

  s.signal(replica, 'SIGSTOP');
  t.teardown(() => s.signal(replica, 'SIGCONT'));
  forwarder.push(src, taskResultMessage('i-1', 'r-2'));
  await forwarder.idle();
  t.same(acks, ['r-1'], 'no ack while no replica confirms');
  t.same(unreplicated, [1], 'reported');
  t.ok(forwarder.failing, 'counts as a failed enqueue (refusals say come back later)');
  t.equal(await jobs(), 2, 'the job is on the master, but only there');

  s.signal(replica, 'SIGCONT');
  // The agent re-sends: enqueued again (the first copy may die with the master), then acked.
  await eventually(
    async () => {
      forwarder.push(src, taskResultMessage('i-1', 'r-2'));
      await forwarder.idle();
      return acks;
    },
    (a) => a.includes('r-2'),
    30_000,
    200,
  );
  t.ok((await jobs()) >= 3, 'the re-send is a new job (result handlers are idempotent)');
  t.notOk(forwarder.failing, 'recovered');

  // A re-send after the ack is acked from memory, without another job.
  const before = await jobs();
  forwarder.push(src, taskResultMessage('i-1', 'r-2'));
  await forwarder.idle();
  t.equal(await jobs(), before);

  // A Redis that refuses WAIT (an ACL without it, a managed service that disables it): results
  // are acked as without replicas, said once, rather than never acked.
  await client.call('ACL', 'SETUSER', 'nowait', 'on', '>pw', '~*', '&*', '+@all', '-wait');
  const limitedConfig = { ...config, url: 'redis://nowait:pw@127.0.0.1:1' };
  const limited = createRedis(limitedConfig.url, sentinelOptions(limitedConfig) ?? {});
  t.teardown(() => limited.disconnect());
  const refused: string[] = [];
  const wait = replicaWait(limited, { timeoutMs: 300, onUnavailable: (e) => refused.push(e) });
  await limited.set(`${s.prefix}:x`, '1');
  t.same(await wait.confirm(), { ok: true, replicas: 0 });
  t.same(await wait.confirm(), { ok: true, replicas: 0 });
  t.equal(refused.length, 1, 'reported once');
  t.match(refused[0], /NOPERM/);
});
