import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  ALERT_BACKOFF_CAP_MS,
  AlertDeliveryError,
  alertBackoff,
  alertFailureError,
  defaultAlertId,
  parseRetryAfter,
  sendAlert,
} from '../reconciler/alert-sender.js';
import type { AlertPayload } from '../shared/alerts.js';
import { ALERT_JOB_OPTIONS } from '../shared/jobs/options.js';
import { UnrecoverableError } from '../store/queues/workers.js';
import { startHttpReceiver } from './helpers/http-receiver.js';

const payload: AlertPayload = {
  event: 'drift_detected',
  timestamp: '2025-03-13T14:22:01Z',
  agent: { name: 'web-01', labels: { role: 'web', env: 'production' } },
  task: 'rotate_certificates',
  policy: 'alert_only',
  remediation_status: 'pending_manual',
  revision: 'a'.repeat(40),
  drifted_steps: ['renew'],
};

const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

t.test('delivers the payload as JSON with the fluke headers', async (t) => {
  const rx = await startHttpReceiver();
  t.teardown(() => rx.close());
  const result = await sendAlert({ url: rx.url, payload, timeoutMs: 5000 });
  t.same(result, { ok: true, status: 200 });
  const [req] = rx.requests;
  t.equal(req?.method, 'POST');
  t.equal(req?.path, '/hook');
  t.same(JSON.parse(req?.body.toString('utf8') ?? ''), payload, 'body equals the payload');
  t.equal(req?.headers['content-type'], 'application/json');
  t.equal(req?.headers['user-agent'], `fluke/${version}`);
  t.equal(req?.headers['x-fluke-alert-id'], defaultAlertId(payload));
  t.equal(req?.headers['x-fluke-event'], 'drift_detected');

  await sendAlert({ url: rx.url, payload, timeoutMs: 5000, alertId: 'job-42' });
  t.equal(rx.requests[1]?.headers['x-fluke-alert-id'], 'job-42', 'an explicit id wins');
  await sendAlert({ url: rx.url, payload: { ...payload }, timeoutMs: 5000 });
  t.equal(
    rx.requests[2]?.headers['x-fluke-alert-id'],
    req?.headers['x-fluke-alert-id'],
    'the default id is stable',
  );
});

t.test('500 twice then 200: retryable, retryable, ok', async (t) => {
  const rx = await startHttpReceiver();
  t.teardown(() => rx.close());
  rx.failNext(2, 500);
  const results = [];
  for (let i = 0; i < 3; i++)
    results.push(await sendAlert({ url: rx.url, payload, timeoutMs: 5000, alertId: 'x' }));
  t.match(results[0], { ok: false, retryable: true, status: 500, error: /^HTTP 500: failing on purpose/ });
  t.match(results[1], { ok: false, retryable: true, status: 500 });
  t.same(results[2], { ok: true, status: 200 });
  t.equal(rx.requests.length, 3);
  t.ok(
    rx.requests.every((r) => r.headers['x-fluke-alert-id'] === 'x'),
    'the same idempotency key on every attempt',
  );
});

t.test('4xx is not retryable, except 408 and 429', async (t) => {
  const rx = await startHttpReceiver();
  t.teardown(() => rx.close());
  rx.failNext(1, 400);
  t.match(await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }), {
    ok: false,
    retryable: false,
    status: 400,
  });
  rx.failNext(1, 404);
  t.match(await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }), {
    ok: false,
    retryable: false,
    status: 404,
  });
  rx.failNext(1, 408);
  t.match(await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }), {
    ok: false,
    retryable: true,
    status: 408,
  });
  rx.failNext(1, 429, { 'retry-after': '7' });
  t.match(await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }), {
    ok: false,
    retryable: true,
    status: 429,
    retryAfterMs: 7000,
  });
  rx.failNext(1, 302, { location: 'https://elsewhere.example/hook' });
  t.match(
    await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }),
    { ok: false, retryable: false, status: 302, error: /redirect to https:\/\/elsewhere\.example\/hook/ },
    'redirects are reported, not followed as a body-less GET',
  );
  t.equal(rx.requests.length, 5);
});

t.test('receiver down (closed port) is retryable', async (t) => {
  const rx = await startHttpReceiver();
  t.teardown(() => rx.close());
  await rx.down();
  t.match(await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }), {
    ok: false,
    retryable: true,
    error: /^network error: ECONNREFUSED/,
  });
  await rx.up();
  t.same(
    await sendAlert({ url: rx.url, payload, timeoutMs: 5000 }),
    { ok: true, status: 200 },
    'delivered once back',
  );
});

t.test('a slow receiver times out, retryable', async (t) => {
  const rx = await startHttpReceiver();
  t.teardown(() => rx.close());
  rx.hold(true);
  const started = Date.now();
  const result = await sendAlert({ url: rx.url, payload, timeoutMs: 200 });
  t.match(result, { ok: false, retryable: true, error: 'timed out after 200 ms' });
  t.ok(Date.now() - started < 3000, 'returns soon after the timeout');
  t.equal(rx.requests.length, 1, 'the request did arrive');
});

t.test('an aborted signal is a retryable failure', async (t) => {
  const rx = await startHttpReceiver();
  t.teardown(() => rx.close());
  rx.hold(true);
  const ac = new AbortController();
  const pending = sendAlert({ url: rx.url, payload, timeoutMs: 10_000, signal: ac.signal });
  await rx.waitForRequests(1);
  ac.abort();
  t.same(await pending, { ok: false, retryable: true, error: 'aborted' });
});

t.test('bad URLs are not retryable; fetchImpl is used when given', async (t) => {
  t.match(await sendAlert({ url: 'not a url', payload, timeoutMs: 100 }), { ok: false, retryable: false });
  t.match(await sendAlert({ url: 'file:///etc/passwd', payload, timeoutMs: 100 }), {
    ok: false,
    retryable: false,
  });
  const seen: string[] = [];
  const fetchImpl: typeof fetch = async (input) => {
    seen.push(String(input));
    return new Response(null, { status: 204 });
  };
  t.same(await sendAlert({ url: 'https://hooks.example/x', payload, timeoutMs: 100, fetchImpl }), {
    ok: true,
    status: 204,
  });
  t.same(seen, ['https://hooks.example/x']);
});

t.test('alertBackoff: exponential from 1 s, capped at 5 min, honours Retry-After', async (t) => {
  t.same(
    [1, 2, 3, 4, 8, 9, 10, 20, 1000].map((n) => alertBackoff(n)),
    [1000, 2000, 4000, 8000, 128_000, 256_000, 300_000, 300_000, 300_000],
  );
  t.equal(alertBackoff(0), 1000, 'never below the base');
  t.equal(alertBackoff(1, 'fluke-alert', new AlertDeliveryError('x', 30_000)), 30_000);
  t.equal(
    alertBackoff(9, 'fluke-alert', new AlertDeliveryError('x', 30_000)),
    256_000,
    'never shorter than ours',
  );
  t.equal(alertBackoff(1, 'fluke-alert', new AlertDeliveryError('x', 86_400_000)), ALERT_BACKOFF_CAP_MS);
  t.equal(alertBackoff(3, 'fluke-alert', new Error('plain')), 4000);
  // The sum over all attempts: how long an outage the queue rides out.
  let total = 0;
  for (let n = 1; n < ALERT_JOB_OPTIONS.attempts; n++) total += alertBackoff(n);
  t.ok(
    total > 55 * 60_000 && total < 70 * 60_000,
    `about an hour of retries (${Math.round(total / 60_000)} min)`,
  );
  t.equal(
    ALERT_JOB_OPTIONS.backoff.type,
    'fluke-alert',
    'a custom type routes BullMQ to settings.backoffStrategy',
  );
});

t.test('alertFailureError and parseRetryAfter', async (t) => {
  const retry = alertFailureError({ ok: false, retryable: true, error: 'HTTP 503', retryAfterMs: 5000 });
  t.ok(retry instanceof AlertDeliveryError);
  t.equal((retry as AlertDeliveryError).retryAfterMs, 5000);
  t.ok(alertFailureError({ ok: false, retryable: false, error: 'HTTP 400' }) instanceof UnrecoverableError);
  const now = Date.parse('2025-01-01T00:00:00Z');
  t.equal(parseRetryAfter('120', now), 120_000);
  t.equal(parseRetryAfter('Wed, 01 Jan 2025 00:01:00 GMT', now), 60_000);
  t.equal(parseRetryAfter('soon', now), null);
  t.equal(parseRetryAfter(null, now), null);
});
