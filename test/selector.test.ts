import t from 'tap';
import { matches, matchesEverything } from '../shared/selector.js';
import type { Selector } from '../shared/types.js';

const sel = (
  match_labels: Record<string, string>,
  match_expressions: Selector['match_expressions'] = [],
): Selector => ({
  match_labels,
  match_expressions,
});
const web = { role: 'web', env: 'production', zone: 'a' };

t.test('match_labels: all must be present and equal', async (t) => {
  t.ok(matches(web, sel({ role: 'web' })));
  t.ok(matches(web, sel({ role: 'web', env: 'production' })));
  t.notOk(matches(web, sel({ role: 'web', env: 'staging' })));
  t.notOk(matches(web, sel({ role: 'web', missing: 'x' })));
  t.notOk(matches({}, sel({ role: 'web' })));
  t.notOk(matches({ role: '' }, sel({ role: 'web' })));
  t.ok(matches({ role: '' }, sel({ role: '' })));
});

t.test('empty selector matches every host', async (t) => {
  t.ok(matches({}, sel({})));
  t.ok(matches(web, sel({})));
  t.ok(matchesEverything(sel({})));
  t.notOk(matchesEverything(sel({ a: 'b' })));
  t.notOk(matchesEverything(sel({}, [{ key: 'a', operator: 'Exists', values: null }])));
});

t.test('In', async (t) => {
  t.ok(matches(web, sel({}, [{ key: 'zone', operator: 'In', values: ['a', 'b'] }])));
  t.notOk(matches(web, sel({}, [{ key: 'zone', operator: 'In', values: ['b', 'c'] }])));
  t.notOk(matches(web, sel({}, [{ key: 'rack', operator: 'In', values: ['a'] }])), 'missing key is not In');
  t.notOk(matches(web, sel({}, [{ key: 'zone', operator: 'In', values: [] }])), 'empty set matches nothing');
});

t.test('NotIn', async (t) => {
  t.ok(matches(web, sel({}, [{ key: 'zone', operator: 'NotIn', values: ['b', 'c'] }])));
  t.notOk(matches(web, sel({}, [{ key: 'zone', operator: 'NotIn', values: ['a'] }])));
  t.ok(matches(web, sel({}, [{ key: 'rack', operator: 'NotIn', values: ['a'] }])), 'missing key is NotIn');
});

t.test('Exists / DoesNotExist', async (t) => {
  t.ok(matches(web, sel({}, [{ key: 'zone', operator: 'Exists', values: null }])));
  t.notOk(matches(web, sel({}, [{ key: 'canary', operator: 'Exists', values: null }])));
  t.ok(matches(web, sel({}, [{ key: 'canary', operator: 'DoesNotExist', values: null }])));
  t.notOk(matches(web, sel({}, [{ key: 'zone', operator: 'DoesNotExist', values: null }])));
  t.ok(
    matches({ canary: '' }, sel({}, [{ key: 'canary', operator: 'Exists', values: null }])),
    'empty value exists',
  );
});

t.test('labels and expressions combine with AND', async (t) => {
  const s = sel({ role: 'web' }, [
    { key: 'zone', operator: 'In', values: ['a'] },
    { key: 'canary', operator: 'DoesNotExist', values: null },
  ]);
  t.ok(matches(web, s));
  t.notOk(matches({ ...web, canary: 'yes' }, s));
  t.notOk(matches({ ...web, role: 'db' }, s));
});

t.test('prototype keys are not labels', async (t) => {
  t.notOk(matches({}, sel({}, [{ key: 'toString', operator: 'Exists', values: null }])));
  t.notOk(matches({}, sel({ constructor: 'x' })));
});
