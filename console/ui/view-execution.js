// One execution: its output live while it runs (server-sent events read through fetch(), so the
// token header goes along), then the step outcomes from its event.

import { api, isAbort, streamEvents } from './api.js';
import { agentLink, badge, kv, notice, section, stepsTable, taskLink, timeEl } from './components.js';
import { h, patch } from './dom.js';
import { duration } from './format.js';

/** Appends output records to a <pre>, with a heading whenever the step or phase changes. */
function outputPane() {
  const pre = h('pre', { class: 'output live', tabindex: '0', 'aria-label': 'Execution output' });
  let last = null;
  let count = 0;
  return {
    node: pre,
    get count() {
      return count;
    },
    clear() {
      pre.replaceChildren();
      last = null;
      count = 0;
    },
    append(records) {
      if (records.length === 0) return;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      const frag = document.createDocumentFragment();
      for (const r of records) {
        const key = `${r.step}\u0000${r.phase}`;
        if (key !== last) {
          frag.appendChild(h('span', { class: 'out-head' }, `── ${r.step} · ${r.phase}\n`));
          last = key;
        }
        frag.appendChild(h('span', { class: `out-line ${r.stream}` }, `${r.line}\n`));
        count++;
      }
      pre.appendChild(frag);
      // Follow the tail unless the reader scrolled up to look at something.
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    },
  };
}

export function executionView(ctx) {
  const id = ctx.path[1] ?? '';
  const head = h('div');
  const result = h('div');
  const pane = outputPane();
  const streamNote = h('div');
  const controller = new AbortController();
  // live: the stream is open; ended: it said `end`; failed: fall back to polling the buffer.
  const stream = { started: false, live: false, ended: null, failed: false };
  let doneChecks = 0;

  function startStream() {
    stream.started = true;
    stream.live = true;
    pane.clear();
    streamEvents(
      `/api/v1/executions/${encodeURIComponent(id)}/stream`,
      (event, data) => {
        if (event === 'output') pane.append([JSON.parse(data)]);
        else if (event === 'end') {
          stream.ended = JSON.parse(data);
          ctx.refreshNow();
        }
      },
      controller.signal,
    ).then(
      () => {
        stream.live = false;
        if (!stream.ended) stream.failed = true;
        ctx.refreshNow();
      },
      (err) => {
        stream.live = false;
        if (isAbort(err)) return;
        stream.failed = true;
        patch(
          streamNote,
          notice('warn', `Live output unavailable (${err.message}); showing the buffered output.`),
        );
        ctx.refreshNow();
      },
    );
  }

  const view = {
    title: `Execution ${id}`,
    finished: false,
    node: h(
      'div',
      { class: 'view' },
      h(
        'div',
        { class: 'view-head' },
        h('h1', null, h('span', { class: 'muted' }, 'Execution '), h('code', null, id)),
      ),
      h('div', { class: 'stack' }, head, section('Output', streamNote, pane.node), result),
    ),
    async refresh(signal) {
      const data = await api(`/api/v1/executions/${encodeURIComponent(id)}`, { signal });
      const exec = data.execution;
      if (!exec.done && !stream.started) startStream();
      // Without a live stream the buffer is the output: on a finished execution, or as a fallback.
      if (!stream.live && !stream.ended && (data.output ?? []).length !== pane.count) {
        pane.clear();
        pane.append(data.output ?? []);
      }
      const outcome = exec.outcome ?? stream.ended?.outcome ?? null;
      const done = exec.done || stream.ended !== null;
      patch(
        head,
        section(
          'Run',
          kv([
            ['Agent', agentLink(exec.agent)],
            ['Task', taskLink(exec.task)],
            [
              'State',
              done
                ? badge(outcome ?? 'done', outcome ?? 'finished')
                : badge('running', stream.live ? 'running · live' : 'running'),
            ],
            exec.event?.at && ['Recorded', timeEl(exec.event.at)],
            exec.event?.duration_ms !== undefined && ['Took', duration(exec.event.duration_ms)],
          ]),
        ),
      );
      patch(result, exec.event ? eventResult(exec.event) : null);
      // The event can trail the end of the output by a moment; stop once it is in (or clearly never).
      if (exec.done) doneChecks++;
      view.finished = exec.done && (exec.event !== null || doneChecks > 5);
    },
    dispose() {
      controller.abort();
    },
  };
  return view;
}

function eventResult(ev) {
  return section(
    'Steps',
    ev.steps ? stepsTable(ev.steps) : null,
    ev.reason ? notice('bad', ev.reason) : null,
    ev.kind === 'timeout'
      ? notice('bad', `The agent did not answer within ${duration(ev.waited_ms)}.`)
      : null,
  );
}
