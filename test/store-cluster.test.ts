/**
 * Every store contract (test/store-*.contract.ts) on a real Redis Cluster (3 masters, 3 replicas),
 * through the client bin/redis-wiring.ts builds from `cluster_nodes`: once plain (the gateway's
 * connection) and once auto-pipelined (the reconciler's store connections). Keys of one test never
 * meet another's: each gets its own prefix.
 */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { RedisStateStore } from '../store/desired-state/redis-state-store.js';
import { RedisEventStore } from '../store/events/redis-event-store.js';
import { RedisEnrollments } from '../store/identity/redis-enrollments.js';
import { RedisGatewayInbox } from '../store/inbox/redis-inbox.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { RedisMetricsTotals } from '../store/metrics/redis-metrics-totals.js';
import { ChannelHub } from '../store/output/channel-hub.js';
import { RedisOutputLog } from '../store/output/redis-output.js';
import { checkEvictionPolicy, createCluster, duplicateClient } from '../store/redis/client.js';
import { watchEvictionPolicy } from '../store/redis/eviction-watch.js';
import { RedisAgentDirectory } from '../store/registry/redis-agent-directory.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import { startRedisCluster } from '../testkit/redis-cluster.js';
import { silentLogger } from './helpers/reconciler-fakes.js';
import { stateStoreContract } from './store-desired-state.contract.js';
import { enrollmentsContract } from './store-enrollments.contract.js';
import { eventStoreContract, T0 } from './store-events.contract.js';
import { inboxContract } from './store-inbox.contract.js';
import { instructionStoreContract } from './store-instructions.contract.js';
import { metricsTotalsContract } from './store-metrics.contract.js';
import { BUFFER_LINES, outputContract } from './store-output.contract.js';
import { KNOWN_FOR_MS, registryContract, STALE_AFTER_MS } from './store-registry.contract.js';
import { runStoreContract } from './store-runs.contract.js';
import { statusStoreContract } from './store-statuses.contract.js';

const HOUR = 3_600_000;

t.test('store contracts on a Redis Cluster', async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  const base = createCluster(cluster.nodes);
  t.teardown(() => base.disconnect());
  t.equal(await checkEvictionPolicy(base), null, 'every node is noeviction');
  t.equal(base.nodes('master').length, 3, 'the client knows every master');

  for (const mode of ['plain', 'auto-pipelined'] as const) {
    t.test(mode, async (t) => {
      const client = mode === 'plain' ? base : duplicateClient(base, { enableAutoPipelining: true });
      if (client !== base) t.teardown(() => client.disconnect());
      let n = 0;
      const freshKeys = () => new Keys(`${cluster.prefix}-${mode}-${n++}`);

      t.test('desired state', async (t) =>
        stateStoreContract(t, () => new RedisStateStore({ redis: client, keys: freshKeys() })),
      );
      t.test('enrollments', async (t) =>
        enrollmentsContract(t, () => new RedisEnrollments(client, freshKeys())),
      );
      t.test('events', async (t) =>
        eventStoreContract(t, {
          make: async ({ maxEventsPerAgent }) =>
            new RedisEventStore({
              redis: client,
              keys: freshKeys(),
              ttlMs: HOUR,
              maxEventsPerAgent,
              now: () => T0 + 60_000,
            }),
        }),
      );
      t.test('inbox', async (t) =>
        inboxContract(t, async () => {
          const keys = freshKeys();
          return {
            inbox: new RedisGatewayInbox({
              redis: client,
              keys,
              logger: silentLogger,
              connect: () => duplicateClient(base),
            }),
            registry: new RedisRegistry({ redis: client, keys, ttlMs: 60_000 }),
          };
        }),
      );
      t.test('instructions', async (t) =>
        instructionStoreContract(t, () => new RedisInstructionStore({ redis: client, keys: freshKeys() })),
      );
      t.test('metrics', async (t) =>
        metricsTotalsContract(t, async () => new RedisMetricsTotals({ redis: client, keys: freshKeys() })),
      );
      t.test('output', async (t) => {
        const hub = new ChannelHub(() => duplicateClient(base), silentLogger);
        t.teardown(() => hub.close());
        outputContract(
          t,
          async () =>
            new RedisOutputLog({ redis: client, keys: freshKeys(), hub, bufferLines: BUFFER_LINES }),
        );
      });
      t.test('registry', async (t) =>
        registryContract(t, async () => {
          const keys = freshKeys();
          return {
            registry: new RedisRegistry({ redis: client, keys, ttlMs: 60_000 }),
            directory: new RedisAgentDirectory({
              redis: client,
              keys,
              staleAfterMs: STALE_AFTER_MS,
              knownForMs: KNOWN_FOR_MS,
            }),
            lose: async (name) => {
              await client.del(keys.agent(name));
            },
          };
        }),
      );
      t.test('runs', async (t) =>
        runStoreContract(t, () => new RedisRunStore({ redis: client, keys: freshKeys() })),
      );
      t.test('statuses', async (t) =>
        statusStoreContract(t, {
          make: async () => {
            const keys = freshKeys();
            return {
              store: new RedisStatusStore({ redis: client, keys, ttlMs: HOUR }),
              expire: async (agent) => {
                await client.del(keys.taskStatus(agent), keys.driftEpisodes(agent));
              },
            };
          },
        }),
      );
    });
  }

  t.test('the eviction policy is checked on every master, not one at random', async (t) => {
    const masters = base.nodes('master');
    const last = masters[masters.length - 1];
    if (!last) throw new Error('no master');
    await last.config('SET', 'maxmemory-policy', 'allkeys-lru');
    t.teardown(() => last.config('SET', 'maxmemory-policy', 'noeviction'));
    for (let i = 0; i < 5; i++) {
      t.match(
        await checkEvictionPolicy(base),
        new RegExp(`Redis node 127\\.0\\.0\\.1:${last.options.port} maxmemory-policy is "allkeys-lru"`),
      );
    }
    const watch = watchEvictionPolicy({ clients: [base], logger: silentLogger, intervalMs: 3_600_000 });
    t.teardown(() => watch.stop());
    await watch.check();
    t.match(watch.problem(), /allkeys-lru/, 'the watch reports it (not ready)');
    await last.config('SET', 'maxmemory-policy', 'noeviction');
    await watch.check();
    t.equal(watch.problem(), null, 'fit again');
  });
});
