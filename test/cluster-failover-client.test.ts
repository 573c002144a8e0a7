/**
 * The Cluster client (store/redis/client.ts) through a master failover on a real Redis Cluster:
 * commands in flight and sent while the slot has no master wait for the replica instead of failing
 * ("Too many Cluster redirections" after 16 quick retries, or a raw MOVED from an auto-pipeline
 * over many slots), and a gateway's inbox reader gets what is sent after the failover.
 */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { InboxReader, sendToGateway } from '../store/inbox/gateway-inbox.js';
import {
  CLUSTER_FAILOVER_WAIT_MS,
  CLUSTER_RETRY_DELAY_MS,
  clusterRetryOptions,
  createCluster,
  duplicateClient,
  onClusterNodeLoss,
  type RedisClient,
} from '../store/redis/client.js';
import { startRedisCluster } from '../testkit/redis-cluster.js';
import { waitFor } from '../testkit/system.js';

const logger = createLogger({ level: 'error', format: 'json' }, 'test');

t.test('the retry budget spans a failover', async (t) => {
  t.equal(CLUSTER_FAILOVER_WAIT_MS, 60_000, 'default wait');
  t.equal(CLUSTER_RETRY_DELAY_MS, 200, 'default delay');
  const o = clusterRetryOptions();
  t.equal(o.maxRedirections, 600, 'two redirections (MOVED to the dead master, then closed) per delay');
  t.equal(o.retryDelayOnFailover, 200);
  t.equal(o.retryDelayOnClusterDown, 200);
  t.equal(o.retryDelayOnTryAgain, 200);
  t.equal(clusterRetryOptions(100, 200).maxRedirections, 16, 'never below ioredis’ own 16');
});

t.test('a master failover on a Redis Cluster', async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  const keys = new Keys(`${cluster.prefix}-fo`);
  const base = createCluster(cluster.nodes);
  // What the reconciler's stores ask for: on a Cluster it must still ride out the failover.
  const stores = duplicateClient(base, { enableAutoPipelining: true });
  t.teardown(() => {
    base.disconnect();
    stores.disconnect();
  });

  const received: string[] = [];
  const reader = new InboxReader(
    duplicateClient(base),
    keys.gatewayInbox('gw'),
    (m) => received.push(m),
    logger,
  );
  await reader.start();
  t.teardown(() => reader.stop());

  // Keys of many slots, all on the master of the gateways' slot (the one killed).
  const victim = await cluster.masterOf(keys.gateways());
  const counters: string[] = [];
  for (let i = 0; counters.length < 24; i++) {
    const key = `${keys.gateways()}-n${i}`.replace(/[{}]/g, '');
    if ((await cluster.masterOf(key)).port === victim.port) counters.push(key);
  }

  // The gateway's failover hook: it fires for the lost master (and not before).
  let losses = 0;
  const stopWatch = onClusterNodeLoss(base, async () => {
    losses++;
  });
  t.teardown(stopWatch);

  const errors: string[] = [];
  const done = { plain: 0, stores: 0 };
  let stop = false;
  const hammer = async (name: keyof typeof done, client: RedisClient) => {
    while (!stop) {
      await Promise.all(
        counters.map((k) =>
          client.incr(k).then(
            () => done[name]++,
            (err: Error) => errors.push(`${name}: ${err.message}`),
          ),
        ),
      );
      await new Promise((r) => setTimeout(r, 10)); // pacing, not waiting for anything
    }
  };
  const running = [hammer('plain', base), hammer('stores', stores)];
  await waitFor('commands served', async () => done.plain > 0 && done.stores > 0, Boolean, 30_000);

  t.equal(losses, 0, 'no node lost yet');
  const { killed, promoted } = await cluster.failover(keys.gateways());
  t.not(killed.port, promoted.port, `replica :${promoted.port} took over from :${killed.port}`);
  const after = { ...done };
  await waitFor(
    'both clients served after the failover',
    async () => done.plain > after.plain && done.stores > after.stores,
    Boolean,
    60_000,
  );
  stop = true;
  await Promise.all(running);
  t.same(errors.slice(0, 5), [], `no command failed (${errors.length} failures)`);
  await waitFor(
    'the node loss reported',
    async () => losses,
    (n) => n >= 1,
    30_000,
  );
  t.equal(losses, 1, 'reported once, not once per reconnect to the dead master');

  t.ok(await sendToGateway(base, keys, 'gw', 'after the failover'), 'sent');
  await waitFor(
    'the inbox reader gets it',
    async () => received.includes('after the failover'),
    Boolean,
    60_000,
  );
  t.pass('read after the failover');
  t.equal(losses, 1, 'still reported once');
});
