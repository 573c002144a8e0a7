// The Fluke console: hash routes → views, a refresh loop for the view on screen, the token box,
// and one delegated click handler for every action button.

import { ApiError, api, getToken, isAbort, needsToken, setToken } from './api.js';
import { notice } from './components.js';
import { h, patch } from './dom.js';
import { parseHash } from './format.js';
import { agentsView, agentView } from './view-agents.js';
import { driftView, eventsView } from './view-events.js';
import { executionView } from './view-execution.js';
import { overviewView } from './view-overview.js';
import { runView } from './view-run.js';
import { tasksView, taskView } from './view-tasks.js';

/** How often the view on screen refreshes itself. */
const POLL_MS = 2500;

/** Route patterns; `*` is one path segment. */
const ROUTES = [
  [[], overviewView],
  [['agents'], agentsView],
  [['agents', '*'], agentView],
  [['tasks'], tasksView],
  [['tasks', '*'], taskView],
  [['drift'], driftView],
  [['events'], eventsView],
  [['executions', '*'], executionView],
  [['runs', '*'], runView],
];

function route(path) {
  for (const [pattern, view] of ROUTES) {
    if (pattern.length === path.length && pattern.every((p, i) => p === '*' || p === path[i])) return view;
  }
  return notFoundView;
}

function notFoundView(ctx) {
  return {
    title: 'Not found',
    finished: true,
    node: h(
      'div',
      { class: 'view' },
      h('h1', null, 'Not found'),
      h(
        'p',
        null,
        `There is no page at /${ctx.path.join('/')}. `,
        h('a', { href: '#/' }, 'Go to the overview'),
      ),
    ),
    async refresh() {},
  };
}

const $ = (id) => document.getElementById(id);
let current = null;

function navigate(hash) {
  if (location.hash === hash) mount();
  else location.hash = hash;
}

function mount() {
  if (current) {
    current.controller.abort();
    clearTimeout(current.timer);
    current.view.dispose?.();
  }
  const { path, query } = parseHash(location.hash);
  const entry = { controller: new AbortController(), timer: null, running: false, again: false };
  const ctx = { path, query, navigate, refreshNow: () => schedule(entry, 0) };
  entry.view = route(path)(ctx);
  // Says "Loading…" until the first refresh lands, then holds errors (or nothing).
  entry.errorBox = h('div', { class: 'view-error' }, h('p', { class: 'muted loading' }, 'Loading…'));
  current = entry;
  $('main').replaceChildren(entry.errorBox, entry.view.node);
  document.title = `${entry.view.title} · Fluke`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === (path[0] ?? '')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  schedule(entry, 0);
}

function schedule(entry, ms) {
  if (entry !== current) return;
  clearTimeout(entry.timer);
  entry.timer = setTimeout(() => tick(entry), ms);
}

async function tick(entry) {
  if (entry !== current) return;
  if (entry.running) {
    entry.again = true;
    return;
  }
  // A hidden tab costs the server nothing; `visibilitychange` refreshes on return.
  if (document.hidden) return;
  entry.running = true;
  try {
    await entry.view.refresh(entry.controller.signal);
    patch(entry.errorBox);
    clearBanner('network');
    $('updated').textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (isAbort(err)) return;
    showError(entry, err);
  } finally {
    entry.running = false;
  }
  if (entry.again) {
    entry.again = false;
    schedule(entry, 0);
  } else if (!entry.view.finished) {
    schedule(entry, POLL_MS);
  }
}

function showError(entry, err) {
  if (err instanceof ApiError && err.status === 0) {
    // Keep the last data on screen; say it is stale.
    banner('network', notice('warn', `${err.message}. Retrying…`));
    $('updated').textContent = 'Offline · showing the last data';
    return;
  }
  if (needsToken(err)) {
    patch(
      entry.errorBox,
      tokenPrompt(`The server wants an API token to show this (${err.status} ${err.code}).`),
    );
    openSettings(false);
    return;
  }
  let text = `This page failed: ${err.message}`;
  if (err instanceof ApiError) {
    text = err.status === 404 ? `Not found: ${err.message}` : `${err.message} (${err.status} ${err.code})`;
  }
  patch(entry.errorBox, notice('bad', text));
}

function tokenPrompt(text) {
  return notice(
    'bad',
    h('strong', null, 'API token needed. '),
    text,
    ' ',
    h('button', { type: 'button', 'data-action': 'open-settings' }, 'Set the token'),
  );
}

// ---- banner: messages about the app rather than the view (offline, actions) -------------------

const banners = new Map();

function banner(kind, node) {
  banners.set(kind, node);
  patch($('banner'), [...banners.values()]);
}

function clearBanner(kind) {
  if (!banners.delete(kind)) return;
  patch($('banner'), [...banners.values()]);
}

// ---- the token box -------------------------------------------------------------------------------

function showTokenState() {
  $('token-state').textContent = getToken()
    ? 'A token is saved in this browser.'
    : 'No token saved: reading may work, reconciling will not.';
  $('settings-toggle').textContent = getToken() ? 'Token ✓' : 'Token';
}

function openSettings(focus = true) {
  $('settings').hidden = false;
  $('settings-toggle').setAttribute('aria-expanded', 'true');
  if (focus) $('token-input').focus();
}

function closeSettings() {
  $('settings').hidden = true;
  $('settings-toggle').setAttribute('aria-expanded', 'false');
}

function setupSettings() {
  $('settings-toggle').addEventListener('click', () => {
    if ($('settings').hidden) openSettings();
    else closeSettings();
  });
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setToken($('token-input').value.trim());
    $('token-input').value = '';
    showTokenState();
    closeSettings();
    clearBanner('action');
    if (current) schedule(current, 0);
  });
  $('token-clear').addEventListener('click', () => {
    setToken('');
    $('token-input').value = '';
    showTokenState();
  });
  showTokenState();
}

// ---- actions ---------------------------------------------------------------------------------------

async function reconcile(button) {
  const target = button.dataset.target;
  const body = target === 'all' ? { target } : { target, name: button.dataset.name };
  button.disabled = true;
  clearBanner('action');
  try {
    const run = await api('/api/v1/reconcile', { method: 'POST', body });
    navigate(`#/runs/${encodeURIComponent(run.id)}`);
  } catch (err) {
    if (needsToken(err)) {
      banner(
        'action',
        tokenPrompt(`Reconciling needs one of the server's api_tokens (${err.status} ${err.code}).`),
      );
      openSettings();
    } else if (err.code === 'api_read_only') {
      banner(
        'action',
        notice('bad', 'This server has no api_tokens configured, so it cannot be reconciled from here.'),
      );
    } else {
      banner('action', notice('bad', `Reconcile failed: ${err.message}`));
    }
  } finally {
    button.disabled = false;
  }
}

document.addEventListener('click', (e) => {
  const button = e.target instanceof Element ? e.target.closest('[data-action]') : null;
  if (!button) return;
  const action = button.dataset.action;
  if (action === 'reconcile') void reconcile(button);
  else if (action === 'open-settings') openSettings();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && current) schedule(current, 0);
});

window.addEventListener('hashchange', () => {
  clearBanner('action');
  mount();
});

setupSettings();
mount();
