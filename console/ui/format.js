// Small pure formatters shared by the views.

const TONES = {
  ok: ['satisfied', 'applied', 'succeeded', 'connected', 'ok', 'done', 'remediated'],
  warn: ['drifted', 'pending', 'running', 'unknown', 'skipped', 'no_tasks', 'alert_only'],
  bad: [
    'failed',
    'failing',
    'unconverged',
    'timeout',
    'timed_out',
    'undeliverable',
    'not_connected',
    'disconnected',
    'alert_failed',
    'error',
  ],
};

/** ok | warn | bad | info — colour is never the only cue: badges carry the word and a symbol. */
export function tone(word) {
  for (const [name, words] of Object.entries(TONES)) if (words.includes(word)) return name;
  return 'info';
}

export const SYMBOL = { ok: '✓', warn: '!', bad: '✗', info: '•' };

/** Words as people say them: `not_connected` → `not connected`. */
export function words(value) {
  return String(value).replace(/_/g, ' ');
}

export function shortRev(rev) {
  return rev ? rev.slice(0, 12) : '—';
}

/** "12s ago", "5m ago", "3h ago", "4d ago"; the full time goes in a title. */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function fullTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
}

/** `role=web,env=prod` or `role=web env=prod` → ['role=web', 'env=prod']; bad parts → error. */
export function parseLabelFilter(text) {
  const parts = text
    .split(/[\s,]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  const bad = parts.find((p) => !/^[^=]+=.*$/.test(p));
  if (bad) return { error: `"${bad}" is not key=value` };
  return { filters: parts };
}

export function labelText(labels) {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** The hash route and its query: `#/events?agent=a` → { path: ['events'], query }. */
export function parseHash(hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const pathPart = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const path = pathPart
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path, query };
}

/** `#/agents/web 01` with each segment encoded; query entries with empty values dropped. */
export function hashFor(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) if (one) q.append(k, one);
  }
  const qs = q.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}
