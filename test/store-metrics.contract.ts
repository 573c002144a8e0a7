/**
 * The metrics totals contract (store/metrics/metrics-totals.ts), run against the memory twin and
 * the Redis implementation by store-metrics.test.ts; and the recorder that flushes into them.
 */
import type { Test } from 'tap';
import { CLUSTER_METRICS, type ClusterMetric } from '../shared/metrics.js';
import { MetricsRecorder } from '../store/metrics/metrics-recorder.js';
import type { MetricIncrements, MetricsTotals } from '../store/metrics/metrics-totals.js';

function increments(list: Array<[ClusterMetric, string, number, boolean?]>): MetricIncrements {
  const out = new Map<ClusterMetric, Map<string, { delta: number; float: boolean }>>();
  for (const [metric, field, delta, float = false] of list) {
    const fields = out.get(metric) ?? new Map();
    fields.set(field, { delta, float });
    out.set(metric, fields);
  }
  return out;
}

export function metricsTotalsContract(t: Test, make: () => Promise<MetricsTotals>) {
  t.test('empty: every family, no fields', async (t) => {
    const totals = await make();
    const read = await totals.read();
    t.same([...read.keys()].sort(), Object.keys(CLUSTER_METRICS).sort());
    t.ok([...read.values()].every((fields) => Object.keys(fields).length === 0));
  });

  t.test('increments add up per family and field, integers and floats', async (t) => {
    const totals = await make();
    await totals.add(
      increments([
        ['alertsSent', 'event=drift_detected', 2],
        ['compileDuration', 'sum', 0.25, true],
      ]),
    );
    await totals.add(
      increments([
        ['alertsSent', 'event=drift_detected', 3],
        ['alertsSent', 'event=drift_resolved', 1],
        ['compileDuration', 'sum', 0.5, true],
      ]),
    );
    await totals.add(new Map());
    const read = await totals.read();
    t.same(read.get('alertsSent'), { 'event=drift_detected': '5', 'event=drift_resolved': '1' });
    t.same(read.get('compileDuration'), { sum: '0.75' });
  });

  t.test('the recorder flushes its sums into the totals', async (t) => {
    const totals = await make();
    const recorder = new MetricsRecorder({ totals, flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) recorder.inc('alertsSent', { event: 'drift_detected' });
    await recorder.flush();
    recorder.inc('alertsSent', { event: 'drift_detected' }, 2);
    await recorder.close();
    const fields = (await totals.read()).get('alertsSent') ?? {};
    t.same(Object.values(fields), ['12']);
  });
}
