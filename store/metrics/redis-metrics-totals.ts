/** The metrics totals in Redis: one hash per family (`keys.metric(name)`), field → total. */
import type { Keys } from '../../shared/keys.js';
import { CLUSTER_METRICS, type ClusterMetric } from '../../shared/metrics.js';
import type { RedisClient } from '../redis/client.js';
import type { MetricIncrements, MetricsTotals } from './metrics-totals.js';

export interface RedisMetricsTotalsOptions {
  redis: RedisClient;
  keys: Keys;
}

export class RedisMetricsTotals implements MetricsTotals {
  constructor(private readonly o: RedisMetricsTotalsOptions) {}

  /** HINCRBY / HINCRBYFLOAT, all in one pipeline. */
  async add(increments: MetricIncrements): Promise<void> {
    const pipeline = this.o.redis.pipeline();
    for (const [metric, fields] of increments) {
      const key = this.o.keys.metric(CLUSTER_METRICS[metric].name);
      for (const [field, { delta, float }] of fields) {
        if (float) pipeline.hincrbyfloat(key, field, delta);
        else pipeline.hincrby(key, field, delta);
      }
    }
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async read(): Promise<Map<ClusterMetric, Record<string, string>>> {
    const metrics = Object.keys(CLUSTER_METRICS) as ClusterMetric[];
    const pipeline = this.o.redis.pipeline();
    for (const m of metrics) pipeline.hgetall(this.o.keys.metric(CLUSTER_METRICS[m].name));
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<ClusterMetric, Record<string, string>>();
    metrics.forEach((m, i) => {
      const [err, hash] = replies[i] ?? [null, null];
      if (err) throw err;
      out.set(m, (hash ?? {}) as Record<string, string>);
    });
    return out;
  }
}
