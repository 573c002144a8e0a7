/** The metrics totals: the contract on the memory twin and on Redis hashes. */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { MemoryMetricsTotals } from '../store/metrics/memory-metrics-totals.js';
import { RedisMetricsTotals } from '../store/metrics/redis-metrics-totals.js';
import { startRedis } from '../testkit/redis.js';
import { metricsTotalsContract } from './store-metrics.contract.js';

t.test('memory', async (t) => metricsTotalsContract(t, async () => new MemoryMetricsTotals()));

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  metricsTotalsContract(
    t,
    async () => new RedisMetricsTotals({ redis: client, keys: new Keys(`${redis.prefix}-${n++}`) }),
  );
});
