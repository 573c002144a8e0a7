// The tasks of the desired state in force, and one task's definition with its agents.

import { api, apiAll } from './api.js';
import {
  agentLink,
  badge,
  kv,
  labelChips,
  link,
  notice,
  reconcileButton,
  section,
  table,
} from './components.js';
import { h, patch } from './dom.js';
import { shortRev, words } from './format.js';
import { statusColumns } from './view-agents.js';

function expressionText(e) {
  const values = Array.isArray(e.values) && e.values.length > 0 ? ` (${e.values.join(', ')})` : '';
  return `${e.key} ${e.operator}${values}`;
}

export function selectorView(selector) {
  const labels = selector?.match_labels ?? {};
  const exprs = selector?.match_expressions ?? [];
  if (Object.keys(labels).length === 0 && exprs.length === 0) return badge('unknown', 'every agent');
  return h(
    'span',
    { class: 'chips' },
    Object.keys(labels).length > 0 ? labelChips(labels) : null,
    exprs.map((e) => h('code', { class: 'chip' }, expressionText(e))),
  );
}

function statusCounts(counts) {
  const entries = Object.entries(counts ?? {}).filter(([, n]) => n > 0);
  if (entries.length === 0) return h('span', { class: 'muted' }, '—');
  return h(
    'span',
    { class: 'chips' },
    entries.map(([word, n]) => badge(word, `${n} ${words(word)}`)),
  );
}

export function tasksView() {
  const body = h('div', { class: 'panel' });
  return {
    title: 'Tasks',
    node: h('div', { class: 'view' }, h('div', { class: 'view-head' }, h('h1', null, 'Tasks')), body),
    async refresh(signal) {
      const page = await apiAll('/api/v1/tasks', 'tasks', { signal });
      patch(
        body,
        h(
          'p',
          { class: 'muted' },
          'Revision ',
          h('code', { title: page.revision ?? '' }, shortRev(page.revision)),
        ),
        page.truncated ? notice('warn', `Showing the first ${page.tasks.length} tasks.`) : null,
        table(
          [
            {
              label: 'Task',
              cell: (t) => [
                h('strong', null, link(['tasks', t.name], t.name)),
                t.description ? h('div', { class: 'muted small' }, t.description) : null,
              ],
            },
            { label: 'Policy', cell: (t) => words(t.policy) },
            { label: 'Selector', cell: (t) => selectorView(t.selector) },
            {
              label: 'Steps',
              cell: (t) =>
                h(
                  'span',
                  { class: 'chips' },
                  (t.steps ?? []).map((s) => h('code', { class: 'chip' }, `${s.type} ${s.name}`)),
                ),
            },
            { label: 'Agents', cell: (t) => String(t.matched_agents ?? 0) },
            { label: 'Status', cell: (t) => statusCounts(t.status_counts) },
          ],
          page.tasks,
          {
            key: (t) => t.name,
            empty: page.revision ? 'The desired state has no tasks.' : 'No good commit yet.',
          },
        ),
      );
    },
  };
}

/** A step field's value: commands as code blocks, maps as chips, unset as a dash. */
function fieldValue(value) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
  if (typeof value === 'string')
    return value.includes('\n') || value.length > 60
      ? h('pre', { class: 'code' }, value)
      : h('code', null, value);
  if (typeof value === 'boolean' || typeof value === 'number') return h('code', null, String(value));
  if (Array.isArray(value)) return h('code', null, value.join(', '));
  if (typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return h('span', { class: 'muted' }, '{}');
    return h(
      'span',
      { class: 'chips' },
      entries.map(([k, v]) =>
        h('code', { class: 'chip' }, `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`),
      ),
    );
  }
  return String(value);
}

function stepItem(step, i) {
  const fields = Object.entries(step).filter(([k]) => k !== 'type' && k !== 'name');
  return h(
    'li',
    { class: 'step', 'data-key': step.name },
    h(
      'div',
      { class: 'step-head' },
      h('span', { class: 'step-no' }, `${i + 1}`),
      h('code', null, step.type),
      ' ',
      h('strong', null, step.name),
    ),
    kv(fields.map(([k, v]) => [k, fieldValue(v)])),
  );
}

export function taskView(ctx) {
  const name = ctx.path[1] ?? '';
  const body = h('div', { class: 'stack' });
  const head = h(
    'div',
    { class: 'view-head' },
    h('h1', null, h('span', { class: 'muted' }, 'Task '), name),
    reconcileButton('task', name, 'Reconcile task'),
  );
  return {
    title: name,
    node: h('div', { class: 'view' }, h('p', { class: 'crumbs' }, link(['tasks'], '← Tasks')), head, body),
    async refresh(signal) {
      const { task } = await api(`/api/v1/tasks/${encodeURIComponent(name)}`, { signal });
      patch(
        body,
        task.description ? h('p', { class: 'lead' }, task.description) : null,
        section(
          'Definition',
          kv([
            [
              'Policy',
              [words(task.policy), task.drift ? '' : h('span', { class: 'muted' }, ' (server default)')],
            ],
            ['Selector', selectorView(task.selector)],
            ['Matched agents', String(task.matched_agents ?? 0)],
            ['Status', statusCounts(task.status_counts)],
          ]),
          h('h3', null, 'Steps, in order'),
          h('ol', { class: 'steps' }, (task.steps ?? []).map(stepItem)),
        ),
        section(
          'Agents',
          table(
            [{ label: 'Agent', cell: (a) => h('strong', null, agentLink(a.name)) }, ...statusColumns()],
            task.agents ?? [],
            { key: (a) => a.name, empty: 'No connected agent matches the selector.' },
          ),
          h('p', { class: 'more' }, link(['events'], `All events of ${name} →`, { task: name })),
        ),
      );
    },
  };
}
