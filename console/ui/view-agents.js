// The agents list (with a label filter) and one agent's page.

import { api, apiAll } from './api.js';
import {
  badge,
  eventList,
  execLink,
  kv,
  labelChips,
  link,
  notice,
  reconcileButton,
  section,
  table,
  taskLink,
  timeEl,
} from './components.js';
import { h, patch } from './dom.js';
import { hashFor, parseLabelFilter } from './format.js';

export function connection(agent) {
  return agent.connected ? badge('connected') : badge('disconnected');
}

/** `{tasks, ok, drifted, failing, unknown}` → the non-zero counts as badges. */
export function driftSummary(d) {
  if (!d || d.tasks === 0) return h('span', { class: 'muted' }, 'no tasks');
  const parts = [
    ['ok', d.ok, 'ok'],
    ['drifted', d.drifted, 'drifted'],
    ['failed', d.failing, 'failing'],
    ['unknown', d.unknown, 'unknown'],
  ].filter(([, n]) => n > 0);
  return h(
    'span',
    { class: 'chips' },
    parts.map(([word, n, label]) => badge(word, `${n} ${label}`)),
  );
}

export function agentsView(ctx) {
  const filters = ctx.query.getAll('label');
  const input = h('input', {
    type: 'search',
    name: 'label',
    placeholder: 'role=web env=production',
    'aria-label': 'Filter by labels (key=value)',
    value: filters.join(' '),
  });
  const error = h('span', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'filters', role: 'search' },
    h('label', null, 'Labels ', input),
    h('button', { type: 'submit' }, 'Filter'),
    filters.length > 0 ? h('a', { href: '#/agents', class: 'button' }, 'Clear') : null,
    error,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const parsed = parseLabelFilter(input.value);
    if (parsed.error) {
      error.textContent = parsed.error;
      return;
    }
    ctx.navigate(hashFor(['agents'], { label: parsed.filters }));
  });
  const body = h('div', { class: 'panel' });
  const node = h(
    'div',
    { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', null, 'Agents')),
    form,
    body,
  );
  return {
    title: 'Agents',
    node,
    async refresh(signal) {
      const qs = filters.map((f) => `label=${encodeURIComponent(f)}`).join('&');
      const page = await apiAll(`/api/v1/agents${qs ? `?${qs}` : ''}`, 'agents', { signal });
      patch(
        body,
        page.truncated
          ? notice('warn', `Showing the first ${page.agents.length} agents; filter by label.`)
          : null,
        table(
          [
            { label: 'Agent', cell: (a) => h('strong', null, link(['agents', a.name], a.name)) },
            {
              label: 'Connection',
              cell: (a) => [connection(a), ' ', h('span', { class: 'muted' }, timeEl(a.last_seen))],
            },
            { label: 'Labels', cell: (a) => labelChips(a.labels) },
            { label: 'Tasks', cell: (a) => driftSummary(a.drift) },
            { label: 'Version', cell: (a) => a.agent_version ?? '' },
          ],
          page.agents,
          {
            key: (a) => a.name,
            empty: filters.length > 0 ? 'No agent has these labels.' : 'No agent has connected yet.',
          },
        ),
      );
    },
  };
}

export function agentView(ctx) {
  const name = ctx.path[1] ?? '';
  const head = h(
    'div',
    { class: 'view-head' },
    h('h1', null, h('span', { class: 'muted' }, 'Agent '), name),
    reconcileButton('agent', name, 'Reconcile now'),
  );
  const body = h('div', { class: 'stack' });
  return {
    title: name,
    node: h('div', { class: 'view' }, h('p', { class: 'crumbs' }, link(['agents'], '← Agents')), head, body),
    async refresh(signal) {
      const { agent } = await api(`/api/v1/agents/${encodeURIComponent(name)}`, { signal });
      patch(
        body,
        section(
          'Host',
          kv([
            ['Connection', connection(agent)],
            ['Labels', labelChips(agent.labels)],
            ['Last seen', timeEl(agent.last_seen)],
            ['Connected', agent.connected_at ? timeEl(agent.connected_at) : null],
            ['Version', agent.agent_version],
            ['Executors', (agent.executors ?? []).join(', ')],
            ['Gateway', agent.gateway_id],
            ['Tasks', driftSummary(agent.drift)],
          ]),
        ),
        section(
          'Tasks',
          table(
            [{ label: 'Task', cell: (t) => h('strong', null, taskLink(t.task)) }, ...statusColumns()],
            agent.tasks ?? [],
            { key: (t) => t.task, empty: 'No task matches this agent’s labels.' },
          ),
        ),
        section(
          'Recent events',
          eventList(agent.events ?? [], { showAgent: false }),
          h('p', { class: 'more' }, link(['events'], `All events of ${name} →`, { agent: name })),
        ),
      );
    },
  };
}

/** The columns of one (agent, task) status, for rows that carry it as `status` (or null). */
export function statusColumns() {
  return [
    {
      label: 'Status',
      cell: (row) => (row.status ? badge(row.status.outcome) : badge('unknown', 'no status yet')),
    },
    { label: 'Mode', cell: (row) => row.status?.mode ?? '' },
    { label: 'When', cell: (row) => (row.status ? timeEl(row.status.at) : '') },
    { label: 'Steps', cell: (row) => problemSteps(row.status) },
    { label: 'Execution', cell: (row) => execLink(row.status?.execution_id) },
  ];
}

export function problemSteps(status) {
  if (!status) return '';
  const out = [];
  if (status.drifted_steps?.length) out.push(`drifted: ${status.drifted_steps.join(', ')}`);
  if (status.failed_steps?.length) out.push(`failed: ${status.failed_steps.join(', ')}`);
  return out.join('; ');
}
