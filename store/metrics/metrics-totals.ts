/**
 * The metrics totals port: the cluster-wide sums every reconciler adds to and every gateway
 * reads at scrape time (shared/metrics.ts defines the families).
 *
 * Glossary: a *family* (ClusterMetric) has one *total* per *field* (a label set, or a histogram
 * bucket of one); an *increment* adds a delta to a field, integer or float. Totals only grow.
 */
import type { ClusterMetric } from '../../shared/metrics.js';

/** Deltas per family and field; `float` for fields that take fractional deltas (sums of seconds). */
export type MetricIncrements = ReadonlyMap<
  ClusterMetric,
  ReadonlyMap<string, { delta: number; float: boolean }>
>;

export interface MetricsTotals {
  /** Adds every delta to its total; throws when the increments may not all have been applied. */
  add(increments: MetricIncrements): Promise<void>;
  /** Every family's totals (field → value as text), each family present. */
  read(): Promise<Map<ClusterMetric, Record<string, string>>>;
}
