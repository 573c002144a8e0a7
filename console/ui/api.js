// The HTTP API client: JSON calls, cursor paging and server-sent events over fetch(). The API
// token lives in localStorage and goes out as `Authorization: Bearer` on every call, reads too:
// the server may be set to `api_read_access = "token"`.

const TOKEN_KEY = 'fluke.apiToken';
/** Fallback when localStorage is unavailable. */
let memoryToken = '';

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled (private mode): the token lasts for this page only.
  }
  memoryToken = token;
}

function token() {
  return getToken() || memoryToken;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** 401/403 that a (better) token would fix; `api_read_only` is a server setting, not a token. */
export function needsToken(err) {
  return (
    err instanceof ApiError && (err.status === 401 || (err.status === 403 && err.code !== 'api_read_only'))
  );
}

export function isAbort(err) {
  return err instanceof DOMException && err.name === 'AbortError';
}

function headers(extra) {
  const out = { accept: 'application/json', ...extra };
  const t = token();
  if (t) out.authorization = `Bearer ${t}`;
  return out;
}

async function send(path, init) {
  try {
    return await fetch(path, { cache: 'no-store', ...init });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ApiError(0, 'network', 'cannot reach the Fluke server');
  }
}

async function failure(res) {
  let body = null;
  try {
    body = JSON.parse(await res.text());
  } catch {
    // not a JSON error body (a proxy's page, say)
  }
  return new ApiError(res.status, body?.code ?? `http_${res.status}`, body?.error ?? `HTTP ${res.status}`);
}

/** GET (or POST with `body`) → parsed JSON; throws ApiError with the server's code. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const extra = body === undefined ? {} : { 'content-type': 'application/json' };
  const res = await send(path, {
    method,
    headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!res.ok) throw await failure(res);
  try {
    return await res.json();
  } catch {
    throw new ApiError(res.status, 'bad_response', 'the server answered something that is not JSON');
  }
}

/**
 * Follows `next_cursor` until it is null and concatenates the `key` arrays. Stops after
 * `maxItems` (a page listing tens of thousands of rows helps nobody) and says so.
 */
export async function apiAll(path, key, { signal, pageSize = 500, maxItems = 2000 } = {}) {
  const sep = path.includes('?') ? '&' : '?';
  const items = [];
  let first = null;
  let cursor = null;
  for (;;) {
    const page = await api(
      `${path}${sep}limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { signal },
    );
    first ??= page;
    items.push(...(page[key] ?? []));
    cursor = page.next_cursor ?? null;
    if (!cursor) return { ...first, [key]: items, truncated: false };
    if (items.length >= maxItems) return { ...first, [key]: items.slice(0, maxItems), truncated: true };
  }
}

/**
 * Reads a text/event-stream with fetch() (EventSource cannot send the Authorization header) and
 * calls `onEvent(name, data)` per event. Resolves when the server closes the stream.
 */
export async function streamEvents(path, onEvent, signal) {
  const res = await send(path, { headers: headers({ accept: 'text/event-stream' }), signal });
  if (!res.ok) throw await failure(res);
  if (!res.body) throw new ApiError(res.status, 'bad_response', 'the stream has no body');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, '\n');
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseFrame(frame);
      if (parsed) onEvent(parsed.event, parsed.data);
      end = buffer.indexOf('\n\n');
    }
  }
}

/** One SSE frame → { event, data }; comments (`: ping`) and empty frames → null. */
export function parseFrame(frame) {
  let event = 'message';
  const data = [];
  for (const line of frame.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length > 0 ? { event, data: data.join('\n') } : null;
}
