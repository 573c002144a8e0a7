import type { Logger } from 'pino';
import { coerceError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import {
  CLUSTER_METRICS,
  type ClusterMetric,
  type CounterMetric,
  type HistogramMetric,
  increments,
  type MetricLabels,
  type MetricsSink,
} from '../../shared/metrics.js';
import type { RedisClient } from '../redis/client.js';
import type { MetricsTotals } from './metrics-totals.js';
import { RedisMetricsTotals } from './redis-metrics-totals.js';

export interface MetricsRecorderOptions {
  /** Where the sums go (RedisMetricsTotals in production). */
  totals: MetricsTotals;
  logger?: Logger;
  flushIntervalMs?: number;
}

type Pending = Map<ClusterMetric, Map<string, { delta: number; float: boolean }>>;

export class MetricsRecorder implements MetricsSink {
  private pending: Pending = new Map();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private failing = false;
  private closed = false;
  private readonly flushIntervalMs: number;

  constructor(private readonly o: MetricsRecorderOptions) {
    this.flushIntervalMs = o.flushIntervalMs ?? 1000;
  }

  inc(metric: CounterMetric, labels?: MetricLabels, by = 1): void {
    this.add(metric, labels, by);
  }

  observe(metric: HistogramMetric, value: number, labels?: MetricLabels): void {
    this.add(metric, labels, value);
  }

  private add(metric: ClusterMetric, labels: MetricLabels | undefined, value: number): void {
    if (!Number.isFinite(value)) return;
    try {
      let fields = this.pending.get(metric);
      if (!fields) {
        fields = new Map();
        this.pending.set(metric, fields);
      }
      for (const [field, delta, float] of increments(CLUSTER_METRICS[metric], labels, value)) {
        const cur = fields.get(field);
        if (cur) cur.delta += delta;
        else fields.set(field, { delta, float });
      }
      this.schedule();
    } catch (err) {
      this.o.logger?.debug({ err: coerceError(err).message, metric }, 'metric not recorded');
    }
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  /** Writes what is pending; resolves when written or failed (never rejects). */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.o.totals.add(batch);
      if (this.failing) this.o.logger?.info('metrics are reaching RedisClient again');
      this.failing = false;
    } catch (err) {
      // Whatever part of the pipeline did not run is retried with the next flush; a part that did
      // run may be counted twice, which a counter survives better than losing the batch.
      if (!this.failing) this.o.logger?.warn({ err: coerceError(err).message }, 'metrics flush failed');
      this.failing = true;
      this.merge(batch);
      this.schedule();
    }
  }

  private merge(batch: Pending): void {
    for (const [metric, fields] of batch) {
      const into = this.pending.get(metric) ?? new Map();
      this.pending.set(metric, into);
      for (const [field, v] of fields) {
        const cur = into.get(field);
        if (cur) cur.delta += v.delta;
        else into.set(field, { ...v });
      }
    }
  }

  /** Last flush; bounded so a Redis that is gone cannot hold shutdown. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}

/** Every cluster family's hash, for /metrics. */
export function readClusterMetrics(
  redis: RedisClient,
  keys: Keys,
): Promise<Map<ClusterMetric, Record<string, string>>> {
  return new RedisMetricsTotals({ redis, keys }).read();
}

/** Times a compile and counts the ones that rejected the commit. */
export async function meterCompile<T extends { errors: readonly unknown[] }>(
  metrics: MetricsSink,
  compile: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  let failed = true;
  try {
    const result = await compile();
    failed = result.errors.length > 0;
    return result;
  } finally {
    metrics.observe('compileDuration', (performance.now() - started) / 1000);
    if (failed) metrics.inc('compileErrors');
  }
}
