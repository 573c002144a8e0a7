/** The pure rules of bounded input, with literals: agent names, label keys and values, label limits, token buckets. */
import t from 'tap';
import {
  agentNameProblem,
  isAgentName,
  isLabelKey,
  isLabelValue,
  labelBytes,
  labelsProblem,
} from '../shared/agent-rules.js';
import { DEFAULT_AGENT_LIMITS } from '../shared/config/agent-limits.js';
import { ThrottledReport, TokenBuckets } from '../shared/rate-limit.js';

t.test('agent names', async (t) => {
  for (const ok of ['web-01', 'a', 'web.example.com', 'A_b-c.9', 'x'.repeat(253)]) t.ok(isAgentName(ok), ok);
  for (const bad of [
    '',
    '-web',
    '.web',
    '_web',
    'web..01',
    '..',
    'a/b',
    'a{b}',
    'a b',
    'a\u0000',
    'a\n',
    '\u001b[31m',
    'é',
    'x'.repeat(254),
  ]) {
    t.notOk(isAgentName(bad), JSON.stringify(bad));
  }
  t.match(agentNameProblem('a b'), /agent name "a b" is invalid/);
  t.equal(agentNameProblem('web-01'), null);
});

t.test('label keys: Kubernetes style', async (t) => {
  for (const ok of [
    'env',
    'Role',
    'a',
    'app.kubernetes.io/name',
    'example.com/tier_1',
    'k-8.s_x',
    'x'.repeat(63),
    `${'p'.repeat(253)}/n`,
  ]) {
    t.ok(isLabelKey(ok), ok);
  }
  for (const bad of [
    '',
    '-env',
    'env-',
    '.env',
    'x'.repeat(64),
    'a/b/c',
    '/name',
    'prefix/',
    'Example.com/n',
    'ex_ample.com/n',
    `${'p'.repeat(254)}/n`,
    'en v',
    'env\u0000',
    '{env}',
    'env:x',
  ]) {
    t.notOk(isLabelKey(bad), JSON.stringify(bad));
  }
});

t.test('label values: at most 253 characters, no control characters', async (t) => {
  for (const ok of ['', 'staging', 'a b', 'ünïcode', 'v'.repeat(253)]) t.ok(isLabelValue(ok), ok);
  for (const bad of ['v'.repeat(254), 'a\nb', 'a\tb', '\u001b[2J', '\u007f', '\u009b'])
    t.notOk(isLabelValue(bad), JSON.stringify(bad));
});

t.test('label limits: count, then each key and value, then total bytes', async (t) => {
  const limits = { max_labels: 3, max_label_bytes: 20 };
  t.equal(labelsProblem({ a: '1', b: '2', c: '3' }, limits), null);
  t.equal(labelsProblem({ a: '1', b: '2', c: '3', d: '4' }, limits), 'too many labels: 4 (max_labels = 3)');
  t.equal(labelsProblem({ abc: 'x'.repeat(17) }, limits), null, 'exactly 20 bytes');
  t.equal(
    labelsProblem({ abc: 'x'.repeat(18) }, limits),
    'labels too large: 21 bytes (max_label_bytes = 20)',
  );
  t.equal(labelBytes({ k: 'é' }), 3, 'bytes, not characters');
  t.match(labelsProblem({ '{k}': 'v' }, limits), /label key "\{k\}" is invalid/);
  t.match(labelsProblem({ k: 'a\nb' }, limits), /label "k" has an invalid value/);
  t.match(labelsProblem({ [`${'k'.repeat(100)}`]: 'v' }), /…/, 'a long key is shortened in the reason');
  t.equal(DEFAULT_AGENT_LIMITS.max_labels, 64);
  t.equal(DEFAULT_AGENT_LIMITS.max_label_bytes, 8192);
  const sixtyFour = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(100)]));
  t.equal(labelsProblem(sixtyFour), null, 'the defaults take 64 labels of ~100 bytes');
});

t.test('token buckets: burst, refill, retry-after, bounded table', async (t) => {
  const b = new TokenBuckets({ ratePerSecond: 2, burst: 3 }, 2);
  t.same([b.take('a', 0), b.take('a', 0), b.take('a', 0)], [{ ok: true }, { ok: true }, { ok: true }]);
  t.same(b.take('a', 0), { ok: false, retryAfterMs: 500 });
  t.ok(b.empty('a', 100));
  t.same(b.take('a', 500), { ok: true }, 'one token back after 500 ms at 2/s');
  t.same(b.take('a', 500), { ok: false, retryAfterMs: 500 });
  t.same(b.take('a', 10_000).ok, true, 'refills up to the burst');
  b.take('b', 10_000);
  b.take('c', 10_000);
  t.equal(b.size, 2, 'the table holds at most maxKeys');
  t.notOk(b.empty('a', 10_000), 'a forgotten key starts with a full bucket');
});

t.test('throttled report: one line per key per interval, with the count', async (t) => {
  const r = new ThrottledReport(10_000, 100);
  t.equal(r.note('x', 0), 1, 'the first is reported at once');
  t.equal(r.note('x', 1), null);
  t.equal(r.note('x', 9_999), null);
  t.equal(r.note('y', 5), 1, 'keys are independent');
  t.equal(r.note('x', 10_000), 3, 'the next report counts the quiet ones and itself');
  t.equal(r.note('x', 10_001), null);
  const small = new ThrottledReport(10_000, 1);
  small.note('a', 0);
  t.equal(small.note('b', 1), 1);
  t.equal(small.note('a', 2), 1, 'forgotten past maxKeys: reported again');
});
