import t from 'tap';
import { Router } from '../console/router.js';
import { summarize } from '../store/runs/run-summary.js';

t.test('router matches methods, params and wildcards', async (t) => {
  const ok = () => ({ status: 200 });
  const r = new Router()
    .get('/api/v1/agents', ok)
    .get('/api/v1/agents/:name', ok)
    .post('/api/v1/reconcile', ok)
    .get('/queues/*', ok);
  const m = r.match('GET', '/api/v1/agents/web%2D01');
  t.ok(typeof m === 'object' && m.params.name === 'web-01');
  t.equal(r.match('GET', '/api/v1/nope'), 'not_found');
  t.equal(r.match('GET', '/api/v1/reconcile'), 'method_not_allowed');
  t.equal(r.match('DELETE', '/api/v1/agents'), 'method_not_allowed');
  const w = r.match('GET', '/queues/api/queues');
  t.ok(typeof w === 'object' && w.params['*'] === 'api/queues');
  t.ok(typeof r.match('HEAD', '/api/v1/agents') === 'object', 'HEAD falls back to GET');
  t.equal(r.match('GET', '/api/v1/agents/%E0%A4%A'), 'not_found', 'bad escapes do not throw');
});

t.test('run summary counts outcomes', async (t) => {
  const meta = { id: 'r1', target: 'all' as const, name: null, created_at: '2026-01-01T00:00:00Z' };
  const p = summarize(meta, {
    meta: JSON.stringify(meta),
    fanout: 'done',
    'a:web-01': 'dispatched',
    'a:web-02': 'not_connected',
    'p:web-01\u0000nginx': 'applied',
    'p:web-01\u0000app': 'failed',
    'p:web-01\u0000certs': 'timeout',
    'p:web-01\u0000db': 'satisfied',
  });
  t.same(p.summary, { targeted_agents: 2, pending: 0, succeeded: 2, failed: 1, skipped: 1, timed_out: 1 });
  t.equal(p.done, true);
  t.same(
    p.results.map((r) => r.task),
    ['app', 'certs', 'db', 'nginx'],
  );
  const pending = summarize(meta, { meta: '', fanout: 'done', 'a:x': 'dispatched', 'p:x\u0000t': 'pending' });
  t.equal(pending.done, false);
  t.equal(summarize(meta, { meta: '', fanout: 'pending' }).done, false, 'not done before the fan-out');
});
