/**
 * The cluster-wide metrics model: families that reconcilers record (they may run in processes
 * with no HTTP port) and that every gateway's `/metrics` reads back from Redis at scrape time.
 * Pure: definitions, the port handlers record through, the Redis hash field layout and the
 * Prometheus text rendering. The Redis side is reconciler/metrics-recorder.ts; per-process gateway
 * metrics live in gateway/gateway-metrics.ts (prom-client). docs/operations.md lists every name.
 *
 * Layout: one hash per family (Keys.metric). A counter's field is its label values; a histogram
 * has `<labels>\0b<i>` per bucket (not cumulative; the last index is +Inf) and `<labels>\0sum`.
 */

interface FamilyBase {
  name: string;
  help: string;
  labels: readonly string[];
}
export interface CounterFamily extends FamilyBase {
  type: 'counter';
}
export interface HistogramFamily extends FamilyBase {
  type: 'histogram';
  /** Upper bounds, ascending; +Inf is implied. */
  buckets: readonly number[];
}
export type MetricFamily = CounterFamily | HistogramFamily;

const SECONDS_FAST = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const SECONDS_SLOW = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

export const CLUSTER_METRICS = {
  reconcileCycle: {
    type: 'histogram',
    name: 'fluke_reconcile_cycle_duration_seconds',
    help: 'One agent reconcile: instruction dispatched until every task of it has a result, timeout or undeliverable',
    labels: ['trigger'],
    buckets: SECONDS_SLOW,
  },
  taskResults: {
    type: 'counter',
    name: 'fluke_task_results_total',
    help: 'Task outcomes recorded for dispatched instructions',
    labels: ['outcome'],
  },
  polls: {
    type: 'counter',
    name: 'fluke_git_polls_total',
    help: 'Git polls by result (updated, unchanged, rejected, fetch_failed, skipped)',
    labels: ['result'],
  },
  compileDuration: {
    type: 'histogram',
    name: 'fluke_manifest_compile_duration_seconds',
    help: 'Compiling the manifests of a new commit',
    labels: [],
    buckets: SECONDS_FAST,
  },
  compileErrors: {
    type: 'counter',
    name: 'fluke_manifest_compile_errors_total',
    help: 'Compiles that rejected a commit (it did not replace the last good desired state)',
    labels: [],
  },
  alertsSent: {
    type: 'counter',
    name: 'fluke_alerts_sent_total',
    help: 'Alert webhooks delivered (2xx)',
    labels: ['event'],
  },
  alertFailures: {
    type: 'counter',
    name: 'fluke_alert_send_failures_total',
    help: 'Alert webhook attempts that failed (each is retried with backoff until the last attempt)',
    labels: ['event'],
  },
  alertsAbandoned: {
    type: 'counter',
    name: 'fluke_alerts_abandoned_total',
    help: 'Alerts given up after their last attempt (an alert_failed event is recorded)',
    labels: ['event'],
  },
  resultsDropped: {
    type: 'counter',
    name: 'fluke_results_dropped_total',
    help: 'Agent receipts and results the reconciler dropped without applying them (foreign_instruction: the instruction was issued to another agent than the sender)',
    labels: ['reason'],
  },
} as const satisfies Record<string, MetricFamily>;

type Families = typeof CLUSTER_METRICS;
export type ClusterMetric = keyof Families;
export type CounterMetric = {
  [K in ClusterMetric]: Families[K]['type'] extends 'counter' ? K : never;
}[ClusterMetric];
export type HistogramMetric = Exclude<ClusterMetric, CounterMetric>;
export type MetricLabels = Readonly<Record<string, string>>;

/** What handlers record through. Never throws, never waits: recording must not break a job. */
export interface MetricsSink {
  inc(metric: CounterMetric, labels?: MetricLabels, by?: number): void;
  observe(metric: HistogramMetric, value: number, labels?: MetricLabels): void;
}

export const noopMetrics: MetricsSink = { inc() {}, observe() {} };

/** The hash field of a label set: the values in the family's label order (JSON, so any value is safe). */
export function labelField(family: MetricFamily, labels: MetricLabels = {}): string {
  return JSON.stringify(family.labels.map((l) => labels[l] ?? ''));
}

/** The bucket a value falls in: the first upper bound ≥ value, or the +Inf bucket. */
export function bucketIndex(buckets: readonly number[], value: number): number {
  const i = buckets.findIndex((b) => value <= b);
  return i < 0 ? buckets.length : i;
}

/** The increments one recording makes: [field, delta, isFloat]. */
export function increments(
  family: MetricFamily,
  labels: MetricLabels | undefined,
  value: number,
): Array<[string, number, boolean]> {
  const base = labelField(family, labels);
  if (family.type === 'counter') return [[base, value, false]];
  return [
    [`${base}\0b${bucketIndex(family.buckets, value)}`, 1, false],
    [`${base}\0sum`, value, true],
  ];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length > 0 ? `{${pairs.join(',')}}` : '';
}

function parseValues(field: string): string[] | null {
  try {
    const parsed: unknown = JSON.parse(field);
    return Array.isArray(parsed) ? parsed.map(String) : null;
  } catch {
    return null;
  }
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  return String(n);
}

/** Prometheus text (format 0.0.4) of one family from its hash; fields it cannot read are skipped. */
export function renderFamily(family: MetricFamily, hash: Readonly<Record<string, string>>): string {
  const lines = [`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`];
  if (family.type === 'counter') {
    const entries = Object.entries(hash).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [field, raw] of entries) {
      const values = parseValues(field);
      if (values)
        lines.push(`${family.name}${labelText(family.labels, values)} ${formatNumber(Number(raw))}`);
    }
    // An unlabelled counter exists from the start, so a dashboard never sees "no data" for zero.
    if (family.labels.length === 0 && entries.length === 0) lines.push(`${family.name} 0`);
    return `${lines.join('\n')}\n`;
  }
  const series = new Map<string, { buckets: number[]; sum: number }>();
  for (const [field, raw] of Object.entries(hash)) {
    const cut = field.lastIndexOf('\0');
    if (cut < 0) continue;
    const key = field.slice(0, cut);
    const part = field.slice(cut + 1);
    const s = series.get(key) ?? { buckets: new Array(family.buckets.length + 1).fill(0), sum: 0 };
    series.set(key, s);
    if (part === 'sum') s.sum = Number(raw);
    else if (/^b\d+$/.test(part)) {
      const i = Number(part.slice(1));
      if (i <= family.buckets.length) s.buckets[i] = Number(raw);
    }
  }
  if (family.labels.length === 0 && series.size === 0)
    series.set('[]', { buckets: new Array(family.buckets.length + 1).fill(0), sum: 0 });
  for (const key of [...series.keys()].sort()) {
    const values = parseValues(key);
    const s = series.get(key);
    if (!values || !s) continue;
    let cumulative = 0;
    s.buckets.forEach((count, i) => {
      cumulative += count;
      const le = i < family.buckets.length ? String(family.buckets[i]) : '+Inf';
      lines.push(`${family.name}_bucket${labelText(family.labels, values, ['le', le])} ${cumulative}`);
    });
    lines.push(`${family.name}_sum${labelText(family.labels, values)} ${formatNumber(s.sum)}`);
    lines.push(`${family.name}_count${labelText(family.labels, values)} ${cumulative}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Every cluster family, from the hashes read back (a missing hash renders as empty). */
export function renderClusterMetrics(
  hashes: ReadonlyMap<ClusterMetric, Readonly<Record<string, string>>>,
): string {
  return (Object.keys(CLUSTER_METRICS) as ClusterMetric[])
    .map((m) => renderFamily(CLUSTER_METRICS[m], hashes.get(m) ?? {}))
    .join('');
}
