// The progress of a manual reconcile (what "Reconcile now" opens): polled until done, with a
// link to each execution's live output as soon as it is dispatched.

import { api } from './api.js';
import { agentLink, badge, execLink, kv, section, table, taskLink, timeEl } from './components.js';
import { h, patch } from './dom.js';

function targetText(meta) {
  if (meta.target === 'all') return 'all agents';
  const to = meta.target === 'agent' ? agentLink(meta.name ?? '') : taskLink(meta.name ?? '');
  return [`${meta.target} `, to];
}

function runState(p) {
  if (!p.done) return badge('running');
  const s = p.summary;
  if (s.failed > 0 || s.timed_out > 0) return badge('failed', 'finished with failures');
  return badge('done', 'finished');
}

export function runView(ctx) {
  const id = ctx.path[1] ?? '';
  const body = h('div', { class: 'stack' });
  const view = {
    title: 'Reconcile run',
    finished: false,
    node: h('div', { class: 'view' }, h('div', { class: 'view-head' }, h('h1', null, 'Reconcile run')), body),
    async refresh(signal) {
      const p = await api(`/api/v1/reconcile/${encodeURIComponent(id)}`, { signal });
      view.finished = p.done;
      const executions = new Map(
        (p.executions ?? []).map((e) => [`${e.agent}\u0000${e.task}`, e.execution_id]),
      );
      const execFor = (r) => r.execution_id ?? executions.get(`${r.agent}\u0000${r.task}`) ?? null;
      const s = p.summary;
      patch(
        body,
        section(
          'Run',
          kv([
            ['Target', targetText(p.meta)],
            ['State', runState(p)],
            ['Started', timeEl(p.meta.created_at)],
            ['Run id', h('code', null, p.meta.id)],
          ]),
          h(
            'div',
            { class: 'counts' },
            [
              ['succeeded', s.succeeded, 'succeeded'],
              ['failed', s.failed, 'failed'],
              ['timeout', s.timed_out, 'timed out'],
              ['skipped', s.skipped, 'skipped'],
              ['pending', s.pending, 'pending'],
            ].map(([word, n, label]) => badge(n > 0 ? word : 'none', `${n} ${label}`)),
          ),
        ),
        section(
          'Results',
          table(
            [
              { label: 'Agent', cell: (r) => h('strong', null, agentLink(r.agent)) },
              { label: 'Task', cell: (r) => taskLink(r.task) },
              {
                label: 'Outcome',
                cell: (r) => (r.outcome === 'pending' && execFor(r) ? badge('running') : badge(r.outcome)),
              },
              {
                label: 'Output',
                cell: (r) => execLink(execFor(r), r.outcome === 'pending' ? 'live output' : 'output'),
              },
            ],
            p.results ?? [],
            {
              key: (r) => `${r.agent}\u0000${r.task}`,
              empty: p.done ? 'No task ran.' : 'Waiting for the fan-out…',
            },
          ),
        ),
        section(
          'Agents',
          table(
            [
              { label: 'Agent', cell: ([name]) => h('strong', null, agentLink(name)) },
              { label: 'State', cell: ([, state]) => badge(state) },
            ],
            Object.entries(p.agents ?? {}).sort(([a], [b]) => a.localeCompare(b)),
            { key: ([name]) => name, empty: 'No agent targeted yet.' },
          ),
        ),
      );
    },
  };
  return view;
}
