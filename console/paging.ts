/**
 * Cursor paging for the list routes (`/agents`, `/tasks`, `/drift`): pure. A page is the items
 * after the cursor's key in a stable order; the cursor is opaque to clients (base64url of a
 * versioned key), so the key format can change without breaking them beyond one stale cursor.
 */
import { HttpError } from './router.js';

export const DEFAULT_PAGE_LIMIT = 100;
/** `/events` pages are smaller: each event carries step output. */
export const DEFAULT_EVENTS_LIMIT = 20;
export const MAX_PAGE_LIMIT = 1000;

const VERSION = 'k1:';

export interface PageRequest {
  limit: number;
  /** The key of the last item of the previous page; null for the first page. */
  after: string | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Code-unit order: what `<` does, identical to Redis byte order for ASCII names. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function encodePageCursor(key: string): string {
  return Buffer.from(`${VERSION}${key}`, 'utf8').toString('base64url');
}

/** The key inside a cursor, or null when the text is not a cursor this API handed out. */
export function decodePageCursor(cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Round-trip check: base64url decoding is lenient and would accept garbage.
  if (Buffer.from(text, 'utf8').toString('base64url') !== cursor) return null;
  return text.startsWith(VERSION) ? text.slice(VERSION.length) : null;
}

/**
 * The `limit` parameter clamped to 1…1000. Absent, empty (`?limit=`) or not a number gives
 * `defaultLimit`: `Number('')` is 0, which would otherwise clamp to a page of one.
 */
export function parseLimit(query: URLSearchParams, defaultLimit: number): number {
  const raw = query.get('limit');
  const n = raw === null || raw.trim() === '' ? Number.NaN : Number(raw);
  return Number.isFinite(n) ? Math.min(MAX_PAGE_LIMIT, Math.max(1, Math.floor(n))) : defaultLimit;
}

/** `limit` (default 100, see parseLimit) and `cursor`. */
export function parsePageRequest(query: URLSearchParams, defaultLimit = DEFAULT_PAGE_LIMIT): PageRequest {
  const limit = parseLimit(query, defaultLimit);
  const cursor = query.get('cursor');
  if (cursor === null || cursor === '') return { limit, after: null };
  const after = decodePageCursor(cursor);
  if (after === null) throw new HttpError(400, 'invalid_cursor', 'cursor is not one this API handed out');
  return { limit, after };
}

/** Index of the first key strictly after `after` in keys sorted by compareKeys. */
export function firstAfter(sortedKeys: readonly string[], after: string | null): number {
  if (after === null) return 0;
  let lo = 0;
  let hi = sortedKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(sortedKeys[mid] as string, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One page of items already sorted by `keyOf` in compareKeys order. */
export function pageOf<T>(sorted: readonly T[], keyOf: (item: T) => string, req: PageRequest): Page<T> {
  const start = firstAfter(sorted.map(keyOf), req.after);
  const items = sorted.slice(start, start + req.limit);
  const last = items[items.length - 1];
  const more = start + items.length < sorted.length;
  return { items, next_cursor: more && last !== undefined ? encodePageCursor(keyOf(last)) : null };
}

export function sortByKey<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  return [...items].sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
}
