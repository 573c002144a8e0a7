// The drift list and the event history (filtered by agent and task, paged by cursor).

import { api, apiAll } from './api.js';
import {
  agentLink,
  badge,
  eventList,
  execLink,
  link,
  notice,
  table,
  taskLink,
  timeEl,
} from './components.js';
import { h, patch } from './dom.js';
import { hashFor, words } from './format.js';
import { problemSteps } from './view-agents.js';

export function driftView() {
  const body = h('div', { class: 'panel' });
  return {
    title: 'Drift',
    node: h(
      'div',
      { class: 'view' },
      h('div', { class: 'view-head' }, h('h1', null, 'Drift')),
      h('p', { class: 'muted' }, 'Every agent and task whose last result was drifted or failing.'),
      body,
    ),
    async refresh(signal) {
      const page = await apiAll('/api/v1/drift', 'drift', { signal });
      patch(
        body,
        page.truncated ? notice('warn', `Showing the first ${page.drift.length} entries.`) : null,
        table(
          [
            { label: 'Agent', cell: (d) => h('strong', null, agentLink(d.agent)) },
            { label: 'Task', cell: (d) => taskLink(d.task) },
            { label: 'Outcome', cell: (d) => badge(d.outcome) },
            { label: 'Policy', cell: (d) => words(d.policy ?? '') },
            { label: 'Steps', cell: (d) => problemSteps(d) },
            { label: 'When', cell: (d) => timeEl(d.at) },
            { label: 'Execution', cell: (d) => execLink(d.execution_id) },
          ],
          page.drift,
          {
            key: (d) => `${d.agent}\u0000${d.task}`,
            empty: 'No drift: every checked task is in its desired state.',
          },
        ),
      );
    },
  };
}

const PAGE = 25;

/** `?limit=` in the hash sets the page size (1…200), for links and small screens. */
function pageSize(query) {
  const n = Math.trunc(Number(query.get('limit')));
  return n >= 1 ? Math.min(n, 200) : PAGE;
}

export function eventsView(ctx) {
  const agent = ctx.query.get('agent') ?? '';
  const task = ctx.query.get('task') ?? '';
  const cursor = ctx.query.get('cursor') ?? '';
  const limit = pageSize(ctx.query);
  const keep = { limit: limit === PAGE ? '' : String(limit) };
  const agentInput = h('input', { type: 'search', name: 'agent', value: agent, placeholder: 'any' });
  const taskInput = h('input', { type: 'search', name: 'task', value: task, placeholder: 'any' });
  const form = h(
    'form',
    { class: 'filters', role: 'search' },
    h('label', null, 'Agent ', agentInput),
    h('label', null, 'Task ', taskInput),
    h('button', { type: 'submit' }, 'Filter'),
    agent || task ? h('a', { href: '#/events', class: 'button' }, 'Clear') : null,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate(
      hashFor(['events'], { agent: agentInput.value.trim(), task: taskInput.value.trim(), ...keep }),
    );
  });
  const body = h('div', { class: 'panel' });
  return {
    title: 'Events',
    node: h('div', { class: 'view' }, h('div', { class: 'view-head' }, h('h1', null, 'Events')), form, body),
    async refresh(signal) {
      const qs = new URLSearchParams({ limit: String(limit) });
      if (agent) qs.set('agent', agent);
      if (task) qs.set('task', task);
      if (cursor) qs.set('cursor', cursor);
      const page = await api(`/api/v1/events?${qs}`, { signal });
      const filters = { agent, task, ...keep };
      patch(
        body,
        eventList(page.events ?? [], { empty: cursor ? 'No older events.' : 'No events match.' }),
        h(
          'nav',
          { class: 'pager', 'aria-label': 'Pages' },
          cursor ? link(['events'], '← Newest', filters) : null,
          page.next_cursor ? link(['events'], 'Older →', { ...filters, cursor: page.next_cursor }) : null,
        ),
      );
    },
  };
}
