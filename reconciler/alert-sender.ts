/**
 * Delivers one drift alert to the `alert_webhook` (docs/git.md, docs/events.md), and the
 * retry policy for the alerts queue. `sendAlert` never throws: it says whether a retry could help,
 * so the job handler can throw a plain error (BullMQ retries with `alertBackoff`) or an
 * `UnrecoverableError` (a 4xx will not get better by asking again).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { packageRoot } from '../shared/paths.js';
import { UnrecoverableError } from '../store/queues/workers.js';

export interface SendAlertOptions {
  url: string;
  /** Any JSON object; normally an `AlertPayload` from shared/alerts.ts. */
  payload: object;
  timeoutMs: number;
  /**
   * Sent as `x-fluke-alert-id` so receivers can drop duplicates (BullMQ is at-least-once).
   * Must be the same on every retry: pass `Alert.id` (shared/alerts.ts); the default, a hash of
   * the payload (which includes its timestamp), is stable too.
   */
  alertId?: string;
  fetchImpl?: typeof fetch;
  /** Cancels the request (worker shutting down); the result is then a retryable failure. */
  signal?: AbortSignal;
}

export type SendAlertResult =
  | { ok: true; status: number }
  | {
      ok: false;
      retryable: boolean;
      error: string;
      /** The HTTP status when the receiver answered. */
      status?: number;
      /** From a `Retry-After` header on 429/503. */
      retryAfterMs?: number;
    };

/** How much of an error response body goes into the error message. */
const BODY_SNIPPET_BYTES = 512;

let cachedUserAgent: string | null = null;
function userAgent(): string {
  if (cachedUserAgent === null) {
    let version = 'unknown';
    try {
      const pkg = JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version?: unknown };
      if (typeof pkg.version === 'string') version = pkg.version;
    } catch {
      // A missing package.json must not stop alerts; the header is informational.
    }
    cachedUserAgent = `fluke/${version}`;
  }
  return cachedUserAgent;
}

export function defaultAlertId(payload: object): string {
  return createHash('sha256').update(JSON.stringify(payload)).digest('hex').slice(0, 32);
}

/** 408 and 429 are the receiver saying "later"; every other 4xx is our request being wrong. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** `Retry-After` as delta-seconds or an HTTP date; null when absent or unparsable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

async function bodySnippet(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < BODY_SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // The body is only decoration for the error message.
  } finally {
    // Frees the connection without reading a possibly huge body to the end.
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, BODY_SNIPPET_BYTES).trim();
}

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ? `${code}: ${cause.message}` : cause.message;
  }
  return err.message;
}

export async function sendAlert(options: SendAlertOptions): Promise<SendAlertResult> {
  let target: URL;
  try {
    target = new URL(options.url);
  } catch {
    return { ok: false, retryable: false, error: 'alert_webhook is not a valid URL' };
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return { ok: false, retryable: false, error: `alert_webhook must be http(s), not ${target.protocol}` };
  }
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const payload = options.payload as { event?: unknown };
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': userAgent(),
    'x-fluke-alert-id': options.alertId ?? defaultAlertId(options.payload),
  };
  if (typeof payload.event === 'string') headers['x-fluke-event'] = payload.event;
  const doFetch = options.fetchImpl ?? fetch;
  let res: Response;
  try {
    // Redirects are not followed: fetch would turn a 301/302 POST into a body-less GET.
    res = await doFetch(target, {
      method: 'POST',
      headers,
      body: JSON.stringify(options.payload),
      redirect: 'manual',
      signal,
    });
  } catch (err) {
    if (timeout.aborted)
      return { ok: false, retryable: true, error: `timed out after ${options.timeoutMs} ms` };
    if (options.signal?.aborted) return { ok: false, retryable: true, error: 'aborted' };
    return { ok: false, retryable: true, error: `network error: ${describeNetworkError(err)}` };
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel().catch(() => {});
    return { ok: true, status: res.status };
  }
  const snippet = await bodySnippet(res);
  const where =
    res.status >= 300 && res.status < 400 ? ` (redirect to ${res.headers.get('location') ?? '?'})` : '';
  const error = `HTTP ${res.status}${where}${snippet ? `: ${snippet}` : ''}`;
  const retryable = isRetryableStatus(res.status);
  const retryAfter = retryable ? parseRetryAfter(res.headers.get('retry-after')) : null;
  return {
    ok: false,
    retryable,
    error,
    status: res.status,
    ...(retryAfter !== null ? { retryAfterMs: retryAfter } : {}),
  };
}

/** Thrown by the alert job handler for a retryable failure; carries the receiver's Retry-After. */
export class AlertDeliveryError extends Error {
  override readonly name = 'AlertDeliveryError';
  readonly retryAfterMs: number | null;
  constructor(message: string, retryAfterMs: number | null = null) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** What an alert job handler throws for a failed send: BullMQ retries the one, gives up on the other. */
export function alertFailureError(result: Extract<SendAlertResult, { ok: false }>): Error {
  const message = `alert delivery failed: ${result.error}`;
  return result.retryable
    ? new AlertDeliveryError(message, result.retryAfterMs ?? null)
    : new UnrecoverableError(message);
}

export const ALERT_BACKOFF_BASE_MS = 1_000;
export const ALERT_BACKOFF_CAP_MS = 5 * 60_000;

/**
 * BullMQ `BackoffStrategy` for the alerts queue: 1 s, 2 s, 4 s … capped at 5 min. `attemptsMade`
 * counts failed attempts so far (1 after the first). A receiver's Retry-After is honoured up to the cap.
 * The alerts worker registers it as its `backoffStrategy` (jobs: ALERT_JOB_OPTIONS, shared/jobs/options.ts).
 */
export function alertBackoff(attemptsMade: number, _type?: string, err?: Error): number {
  const n = Math.max(1, Math.floor(attemptsMade));
  // 2^n overflows to Infinity long before n matters; clamp the exponent first.
  const exponential = ALERT_BACKOFF_BASE_MS * 2 ** Math.min(n - 1, 30);
  const delay = Math.min(exponential, ALERT_BACKOFF_CAP_MS);
  const hinted = err instanceof AlertDeliveryError ? err.retryAfterMs : null;
  return hinted === null ? delay : Math.min(Math.max(delay, hinted), ALERT_BACKOFF_CAP_MS);
}
