// Building blocks the views share: badges, links, tables, event lists. Pure functions of data to
// elements; buttons carry `data-action` and are handled by one delegated listener in app.js.

import { h } from './dom.js';
import { ago, duration, fullTime, hashFor, SYMBOL, tone, words } from './format.js';

/** A status word with its colour, a symbol and the word itself (never colour alone). */
export function badge(word, label) {
  const t = tone(word);
  return h(
    'span',
    { class: `badge tone-${t}`, 'data-status': word },
    h('span', { class: 'sym', 'aria-hidden': 'true' }, SYMBOL[t]),
    ` ${words(label ?? word)}`,
  );
}

export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: fullTime(iso) }, ago(iso));
}

export function link(path, text, query) {
  return h('a', { href: hashFor(path, query) }, text);
}

export const agentLink = (name) => link(['agents', name], name);
export const taskLink = (name) => link(['tasks', name], name);
export function execLink(id, text = 'output') {
  return id ? h('a', { href: hashFor(['executions', id]), class: 'exec-link' }, text) : null;
}

export function labelChips(labels) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return h('span', { class: 'muted' }, 'no labels');
  return h(
    'span',
    { class: 'chips' },
    entries.map(([k, v]) => h('code', { class: 'chip' }, `${k}=${v}`)),
  );
}

export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', null, title), ...children);
}

export function kv(pairs) {
  return h(
    'dl',
    { class: 'kv' },
    pairs
      .filter(Boolean)
      .map(([k, v]) => [h('dt', null, k), h('dd', null, v ?? h('span', { class: 'muted' }, '—'))]),
  );
}

export function notice(kind, ...children) {
  return h('div', { class: `notice tone-${kind}`, role: kind === 'bad' ? 'alert' : 'status' }, ...children);
}

/**
 * A table that turns into stacked cards on a phone: every cell carries its column name.
 * columns: [{ label, cell(row) → node|string, class? }]
 */
export function table(columns, rows, { key, empty = 'Nothing here.' } = {}) {
  if (rows.length === 0) return h('p', { class: 'muted empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'list' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          columns.map((c) => h('th', { scope: 'col' }, c.label)),
        ),
      ),
      h(
        'tbody',
        null,
        rows.map((row) =>
          h(
            'tr',
            { 'data-key': key ? key(row) : null },
            columns.map((c) =>
              h(
                'td',
                { 'data-label': c.label, class: c.class ?? null },
                h('div', { class: 'cell' }, c.cell(row)),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

export function reconcileButton(target, name, text) {
  return h(
    'button',
    {
      type: 'button',
      class: 'primary',
      'data-action': 'reconcile',
      'data-target': target,
      'data-name': name,
    },
    text,
  );
}

export function stepsTable(steps) {
  return table(
    [
      { label: 'Step', cell: (s) => h('code', null, s.step) },
      { label: 'Type', cell: (s) => s.type },
      { label: 'Outcome', cell: (s) => badge(s.outcome) },
      { label: 'Exit', cell: (s) => exitCodes(s) },
      { label: 'Took', cell: (s) => duration(s.duration_ms) },
    ],
    steps,
    { key: (s) => s.step, empty: 'No steps.' },
  );
}

function exitCodes(s) {
  const parts = [];
  if (s.exit_code !== null && s.exit_code !== undefined) parts.push(`check ${s.exit_code}`);
  if (s.apply_exit_code !== null && s.apply_exit_code !== undefined) parts.push(`apply ${s.apply_exit_code}`);
  return parts.join(', ');
}

/** The outcome word of any event kind. */
export function eventOutcome(ev) {
  if (ev.kind === 'task_run' || ev.kind === 'timeout') return ev.outcome;
  return ev.kind;
}

function eventSummary(ev) {
  switch (ev.kind) {
    case 'task_run':
      return `${ev.trigger} · ${ev.mode} · ${duration(ev.duration_ms)}`;
    case 'timeout':
      return `${ev.trigger} · no answer in ${duration(ev.waited_ms)}`;
    case 'undeliverable':
      return `${ev.trigger} · ${ev.reason}`;
    case 'alert_failed':
      return `${words(ev.alert_event)} alert gave up after ${ev.attempts} attempts`;
    default:
      return ev.kind;
  }
}

function eventBody(ev) {
  const facts = kv([
    ['Agent', agentLink(ev.agent)],
    ['Task', taskLink(ev.task)],
    ['Revision', h('code', { title: ev.revision }, ev.revision?.slice(0, 12))],
    ev.policy && ['Policy', words(ev.policy)],
    ev.execution_id && ['Execution', execLink(ev.execution_id, ev.execution_id)],
    ev.reason && ['Reason', ev.reason],
    ev.error && ['Error', ev.error],
  ]);
  const steps = ev.steps ?? [];
  return h(
    'div',
    { class: 'event-body' },
    facts,
    steps.length > 0 ? stepsTable(steps) : null,
    steps
      .filter((s) => s.output_tail || s.error)
      .map((s) =>
        h(
          'div',
          { class: 'tail' },
          h('div', { class: 'tail-head' }, `${s.step}: output`, s.error ? ` — ${s.error}` : ''),
          s.output_tail ? h('pre', { class: 'output' }, s.output_tail) : null,
        ),
      ),
  );
}

/** Events newest first; each opens to its steps and output tails. */
export function eventList(events, { showAgent = true, showTask = true, empty = 'No events yet.' } = {}) {
  if (events.length === 0) return h('p', { class: 'muted empty' }, empty);
  return h(
    'ul',
    { class: 'events' },
    events.map((ev) =>
      h(
        'li',
        { 'data-key': ev.id },
        h(
          'details',
          null,
          h(
            'summary',
            null,
            badge(eventOutcome(ev)),
            ' ',
            showAgent ? h('strong', null, ev.agent) : null,
            showAgent && showTask ? ' · ' : null,
            showTask ? h('span', null, ev.task) : null,
            h('span', { class: 'muted ev-meta' }, ' ', eventSummary(ev), ' · ', timeEl(ev.at)),
          ),
          eventBody(ev),
        ),
      ),
    ),
  );
}
