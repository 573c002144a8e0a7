/** The in-process twin of the metrics totals, for tests and single-process use. */
import { CLUSTER_METRICS, type ClusterMetric } from '../../shared/metrics.js';
import type { MetricIncrements, MetricsTotals } from './metrics-totals.js';

export class MemoryMetricsTotals implements MetricsTotals {
  private readonly totals = new Map<ClusterMetric, Map<string, number>>();

  async add(increments: MetricIncrements): Promise<void> {
    for (const [metric, fields] of increments) {
      const into = this.totals.get(metric) ?? new Map<string, number>();
      this.totals.set(metric, into);
      // HINCRBY takes integers only; a float delta would be refused there, so it is here.
      for (const [field, { delta, float }] of fields) {
        if (!float && !Number.isInteger(delta)) throw new Error(`not an integer delta for ${metric}`);
        into.set(field, (into.get(field) ?? 0) + delta);
      }
    }
  }

  async read(): Promise<Map<ClusterMetric, Record<string, string>>> {
    const out = new Map<ClusterMetric, Record<string, string>>();
    for (const m of Object.keys(CLUSTER_METRICS) as ClusterMetric[])
      out.set(m, Object.fromEntries([...(this.totals.get(m) ?? [])].map(([f, v]) => [f, String(v)])));
    return out;
  }
}
