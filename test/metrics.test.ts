/**
 * Metrics: the pure model (field layout, histogram rendering, refusal classes), the Redis
 * recorder against a real Redis, and `/metrics` on a real system — real Redis, Git, agent process
 * and a down alert webhook — where a reconcile must move the counters it names.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import t from 'tap';
import WebSocket from 'ws';
import { refusalReason } from '../gateway/gateway-metrics.js';
import { Keys } from '../shared/keys.js';
import {
  bucketIndex,
  CLUSTER_METRICS,
  increments,
  renderClusterMetrics,
  renderFamily,
} from '../shared/metrics.js';
import { CloseCode } from '../shared/protocol.js';
import { MetricsRecorder, readClusterMetrics } from '../store/metrics/metrics-recorder.js';
import { RedisMetricsTotals } from '../store/metrics/redis-metrics-totals.js';
import { freePort, startRedis } from '../testkit/redis.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';
import { API_TOKEN, basic, startConsoleServices } from './helpers/console-services.js';

/** Prometheus text → samples; `value(name, labels)` sums the samples whose labels include these. */
function parse(text: string) {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  // What a timed-out waitFor prints: the non-zero Fluke samples, not the whole scrape.
  const toJSON = () => samples.filter((s) => s.name.startsWith('fluke_') && s.value !== 0);
  return { samples, families, value, toJSON };
}

t.test('the model: fields, buckets, rendering', async (t) => {
  t.equal(bucketIndex([1, 5], 0.5), 0);
  t.equal(bucketIndex([1, 5], 5), 1, 'upper bounds are inclusive');
  t.equal(bucketIndex([1, 5], 9), 2, 'the +Inf bucket');
  t.same(increments(CLUSTER_METRICS.alertsSent, { event: 'drift_detected' }, 1), [
    ['["drift_detected"]', 1, false],
  ]);
  t.same(increments(CLUSTER_METRICS.compileDuration, undefined, 0.07), [
    ['[]\0b1', 1, false],
    ['[]\0sum', 0.07, true],
  ]);

  const counter = renderFamily(CLUSTER_METRICS.alertFailures, {
    '["a\\"b\\nc"]': '2',
    'not json': '5',
  });
  t.equal(
    counter,
    '# HELP fluke_alert_send_failures_total Alert webhook attempts that failed (each is retried with backoff until the last attempt)\n' +
      '# TYPE fluke_alert_send_failures_total counter\n' +
      'fluke_alert_send_failures_total{event="a\\"b\\nc"} 2\n',
    'label values escaped; unreadable fields skipped',
  );
  t.match(
    renderFamily(CLUSTER_METRICS.compileErrors, {}),
    /\nfluke_manifest_compile_errors_total 0\n$/,
    'zero, not absent',
  );

  const family = { ...CLUSTER_METRICS.reconcileCycle, buckets: [1, 10] };
  const text = renderFamily(family, {
    '["commit"]\0b0': '2',
    '["commit"]\0b2': '1',
    '["commit"]\0sum': '31.5',
  });
  const { value } = parse(text);
  t.equal(value('fluke_reconcile_cycle_duration_seconds_bucket', { trigger: 'commit', le: '1' }), 2);
  t.equal(
    value('fluke_reconcile_cycle_duration_seconds_bucket', { trigger: 'commit', le: '10' }),
    2,
    'cumulative',
  );
  t.equal(value('fluke_reconcile_cycle_duration_seconds_bucket', { trigger: 'commit', le: '+Inf' }), 3);
  t.equal(value('fluke_reconcile_cycle_duration_seconds_count', { trigger: 'commit' }), 3);
  t.equal(value('fluke_reconcile_cycle_duration_seconds_sum', { trigger: 'commit' }), 31.5);

  t.equal(
    refusalReason(CloseCode.refused, 'protocol version 9 not supported (gateway speaks 1)'),
    'protocol_version',
  );
  t.equal(refusalReason(CloseCode.refused, 'name "x" does not match "stg-*"'), 'scope');
  t.equal(refusalReason(CloseCode.badMessage, 'malformed JSON'), 'bad_message');
  t.equal(refusalReason(CloseCode.slow, 'no register message'), 'register_timeout');
  t.equal(refusalReason(4999, 'whatever'), 'other');
});

t.test('the recorder batches into Redis and survives an outage', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const keys = new Keys(redis.prefix);
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  t.teardown(() => client.disconnect());
  const recorder = new MetricsRecorder({
    totals: new RedisMetricsTotals({ redis: client, keys }),
    logger: pino({ level: 'silent' }),
    flushIntervalMs: 60_000,
  });
  t.teardown(() => recorder.close());
  for (let i = 0; i < 1000; i++) recorder.inc('alertsSent', { event: 'drift_detected' });
  recorder.observe('compileDuration', 0.2);
  recorder.observe('compileDuration', 120);
  t.same(await client.hgetall(keys.metric('fluke_alerts_sent_total')), {}, 'nothing written before a flush');
  await recorder.flush();
  t.same(
    await client.hgetall(keys.metric('fluke_alerts_sent_total')),
    { '["drift_detected"]': '1000' },
    'one field, summed',
  );
  const { value } = parse(renderClusterMetrics(await readClusterMetrics(client, keys)));
  t.equal(value('fluke_alerts_sent_total', { event: 'drift_detected' }), 1000);
  t.equal(value('fluke_manifest_compile_duration_seconds_count'), 2);
  t.equal(value('fluke_manifest_compile_duration_seconds_bucket', { le: '0.25' }), 1);
  t.equal(value('fluke_manifest_compile_duration_seconds_sum'), 120.2);

  await redis.kill();
  recorder.inc('alertsSent', { event: 'drift_detected' }, 5);
  await recorder.flush(); // fails: kept for later
  await redis.restart();
  await waitFor(
    'the client reconnects',
    () => client.ping(),
    (r) => r === 'PONG',
  );
  recorder.inc('alertsSent', { event: 'drift_detected' }, 2);
  await recorder.flush();
  t.same(
    await client.hgetall(keys.metric('fluke_alerts_sent_total')),
    { '["drift_detected"]': '7' },
    'what failed to flush went out with the next flush (the restarted Redis started empty)',
  );
});

const ALL_NAMES = [
  'fluke_gateway_connected_agents',
  'fluke_gateway_sockets',
  'fluke_gateway_registrations_total',
  'fluke_gateway_agent_refusals_total',
  'fluke_gateway_messages_received_total',
  'fluke_gateway_messages_sent_total',
  'fluke_gateway_instructions_total',
  'fluke_gateway_results_forwarded_total',
  'fluke_instruction_latency_seconds',
  'fluke_queue_jobs',
  'fluke_events_stored',
  'fluke_drift_entries',
  'fluke_metrics_source_up',
  ...Object.values(CLUSTER_METRICS).map((f) => f.name),
  'process_cpu_user_seconds_total',
  'nodejs_eventloop_lag_seconds',
];

t.test('/metrics on a real system: a reconcile moves the counters', async (t) => {
  const host = sandbox(t);
  const downWebhook = `http://127.0.0.1:${await freePort()}/alerts`;
  const files = {
    'app.fluke.hcl': `
task "config" {
  selector { match_labels = { role = "web" } }
  shell "file" {
    check   = "test -f ${host}/config"
    command = "touch ${host}/config"
  }
}
task "cert" {
  drift { policy = "alert_only" }
  selector { match_labels = { role = "web" } }
  shell "renew" {
    check   = "false"
    command = "true"
  }
}
`,
  };
  const sys = await startSystem(t, { files, alertWebhook: downWebhook });
  const scrape = async () => {
    const res = await fetch(sys.url('/metrics'));
    if (res.status !== 200) throw new Error(`/metrics: ${res.status}`);
    const type = res.headers.get('content-type') ?? '';
    if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`/metrics content-type ${type}`);
    return parse(await res.text());
  };

  const before = await scrape();
  for (const name of ALL_NAMES) t.ok(before.families.has(name), `${name} is exposed`);
  t.equal(before.value('fluke_gateway_registrations_total'), 0);
  t.equal(before.value('fluke_gateway_messages_received_total'), 0);

  // A socket with a bad token is refused before the upgrade.
  const intruder = new WebSocket(`ws://127.0.0.1:${sys.agentsPort}/agent`, {
    headers: { authorization: 'Bearer not-a-token' },
  });
  await new Promise<void>((resolve) => {
    intruder.on('error', () => resolve());
    intruder.on('unexpected-response', () => resolve());
  });
  intruder.terminate();

  await sys.startAgent('web-01', { role: 'web' });
  const gatewayId = sys.services?.gateway?.id ?? '';
  const after = await waitFor(
    'the reconcile and the failed alert in /metrics',
    scrape,
    (m) =>
      m.value('fluke_task_results_total', { outcome: 'applied' }) >= 1 &&
      m.value('fluke_alert_send_failures_total', { event: 'drift_detected' }) >= 1 &&
      m.value('fluke_reconcile_cycle_duration_seconds_count') >= 1 &&
      m.value('fluke_drift_entries', { policy: 'alert_only', outcome: 'drifted' }) === 1,
    90_000,
  );
  const v = after.value;
  t.equal(v('fluke_gateway_connected_agents', { gateway: gatewayId }), 1, 'the agent, on this gateway');
  t.equal(v('fluke_gateway_registrations_total'), 1);
  t.equal(v('fluke_gateway_agent_refusals_total', { reason: 'bad_token' }), 1, 'the bad token');
  t.equal(v('fluke_gateway_messages_received_total', { type: 'register' }), 1);
  t.ok(v('fluke_gateway_messages_received_total', { type: 'task_result' }) >= 2, 'task results in');
  t.equal(v('fluke_gateway_messages_sent_total', { type: 'registered' }), 1);
  t.ok(v('fluke_gateway_messages_sent_total', { type: 'run' }) >= 1, 'instructions out');
  t.ok(v('fluke_gateway_messages_sent_total', { type: 'result_ack' }) >= 1, 'acks out');
  t.ok(v('fluke_gateway_instructions_total', { result: 'delivered' }) >= 1);
  t.ok(v('fluke_gateway_results_forwarded_total', { result: 'ok' }) >= 2);
  t.ok(v('fluke_instruction_latency_seconds_count') >= 1, 'dispatch → first result observed');
  t.ok(v('fluke_task_results_total', { outcome: 'drifted' }) >= 1, 'the alert_only task stays drifted');
  t.equal(v('fluke_git_polls_total', { result: 'updated' }), 1);
  t.equal(v('fluke_manifest_compile_duration_seconds_count'), 1);
  t.equal(v('fluke_manifest_compile_errors_total'), 0);
  t.equal(v('fluke_alerts_sent_total'), 0, 'the webhook is down');
  t.ok(v('fluke_queue_jobs', { queue: 'results', state: 'completed' }) >= 1, 'results processed');
  t.ok(v('fluke_queue_jobs', { queue: 'alerts' }) >= 1, 'the alert waits for its retry');
  t.ok(v('fluke_events_stored') >= 2, 'events are held');
  for (const source of ['queues', 'events', 'drift', 'cluster'])
    t.equal(v('fluke_metrics_source_up', { source }), 1, `${source} read`);

  // A bad commit: a compile error, counted by whoever polls.
  await sys.repo.commit({ 'broken.fluke.hcl': 'task "x" {\n' });
  await waitFor(
    'a compile error',
    scrape,
    (m) => m.value('fluke_manifest_compile_errors_total') === 1,
    60_000,
  );
  t.pass('the rejected commit is counted');
});

t.test('/metrics follows the read access of the console', async (t) => {
  const { base } = await startConsoleServices(t, 'token');
  const refused = await fetch(`${base}/metrics`);
  t.equal(refused.status, 401);
  t.match(refused.headers.get('www-authenticate'), /^Basic realm="fluke"/);
  t.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer nope' } })).status, 403);
  const bearer = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
  t.equal(bearer.status, 200, "Prometheus' authorization: credentials");
  t.match(await bearer.text(), /fluke_queue_jobs\{queue="poll"/);
  const viaBasic = await fetch(`${base}/metrics`, {
    headers: { authorization: basic(API_TOKEN, 'prometheus') },
  });
  t.equal(viaBasic.status, 200, "Prometheus' basic_auth, the token as password");
});
