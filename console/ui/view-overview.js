// The dashboard: what revision is in force, whether the last commit was bad, how many agents are
// connected, how much drift there is, and what happened lately.

import { api } from './api.js';
import { badge, eventList, link, notice, reconcileButton, section, timeEl } from './components.js';
import { h, patch } from './dom.js';
import { shortRev } from './format.js';

export function overviewView() {
  const body = h('div', { class: 'stack' });
  const node = h(
    'div',
    { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', null, 'Overview'), reconcileButton('all', '', 'Reconcile all')),
    body,
  );
  return {
    title: 'Overview',
    node,
    async refresh(signal) {
      const [status, events] = await Promise.all([
        api('/api/v1/status', { signal }),
        api('/api/v1/events?limit=10', { signal }),
      ]);
      patch(
        body,
        sourceProblem(status),
        h('div', { class: 'cards' }, cards(status)),
        section(
          'Recent events',
          eventList(events.events ?? []),
          h('p', { class: 'more' }, link(['events'], 'All events →')),
        ),
      );
    },
  };
}

function card(label, value, extra, href) {
  const content = [h('div', { class: 'card-label' }, label), h('div', { class: 'card-value' }, value), extra];
  return href
    ? h('a', { class: 'card', href, 'data-card': label }, content)
    : h('div', { class: 'card', 'data-card': label }, content);
}

function cards(status) {
  const c = status.counts ?? {};
  const problems = (c.drifted ?? 0) + (c.failing ?? 0);
  return [
    card(
      'Revision',
      h('code', { title: status.revision ?? '', class: 'revision' }, shortRev(status.revision)),
      h('div', { class: 'card-extra' }, 'saved ', timeEl(status.revision_at)),
    ),
    card('Last poll', timeEl(status.last_poll_at), h('div', { class: 'card-extra' }, pollState(status))),
    card(
      'Agents',
      `${c.agents_connected ?? 0} / ${c.agents_known ?? 0}`,
      h('div', { class: 'card-extra' }, 'connected / known'),
      '#/agents',
    ),
    card(
      'Tasks',
      String(c.tasks ?? status.task_count ?? 0),
      h('div', { class: 'card-extra' }, 'in force'),
      '#/tasks',
    ),
    card(
      'Drift',
      String(problems),
      h(
        'div',
        { class: 'card-extra' },
        problems === 0
          ? badge('ok', 'none')
          : [
              badge('drifted', `${c.drifted ?? 0} drifted`),
              ' ',
              badge('failed', `${c.failing ?? 0} failing`),
            ],
      ),
      '#/drift',
    ),
  ];
}

function pollState(status) {
  if (status.last_error) return badge('error', 'last commit rejected');
  if (!status.revision) return badge('pending', 'waiting for the first good commit');
  return badge('ok', 'in sync');
}

/** A bad commit or a failed fetch, with every file:line, while the last good state stays. */
function sourceProblem(status) {
  const err = status.last_error;
  if (!err) return null;
  const diagnostics = err.diagnostics ?? [];
  return notice(
    'bad',
    h(
      'strong',
      null,
      err.revision
        ? `Commit ${shortRev(err.revision)} was rejected`
        : 'The last poll of the repository failed',
    ),
    ' ',
    timeEl(err.at),
    diagnostics.length > 0
      ? h(
          'ul',
          { class: 'diagnostics' },
          diagnostics.map((d) =>
            h(
              'li',
              null,
              h('code', null, `${d.file}:${d.line}${d.column ? `:${d.column}` : ''}`),
              ' ',
              d.message,
            ),
          ),
        )
      : h('p', null, err.message),
    h(
      'p',
      { class: 'muted' },
      status.revision
        ? `Revision ${shortRev(status.revision)} stays in force until a good commit arrives.`
        : 'No good revision yet.',
    ),
  );
}
