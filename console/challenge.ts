/**
 * Auth for the pages a browser or a scraper opens directly (Bull Board, /metrics): a refusal for
 * a missing token is a 401 with `WWW-Authenticate: Basic realm="fluke"`, so the browser prompts
 * (any user name, the API token as password) and Prometheus' `basic_auth` / `authorization`
 * settings both work. The token check itself is gateway/console/auth.ts.
 */
import type { ConsoleAuth } from './auth.js';
import { errorBody, type Handler, HttpError, type HttpRequest, type HttpResponse } from './router.js';

export const BASIC_CHALLENGE = 'Basic realm="fluke", charset="UTF-8"';

/** The answer to a refused request: JSON `{error, code}`, plus the challenge on a 401. */
export function refusal(err: HttpError): HttpResponse {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (err.status === 401) headers['www-authenticate'] = BASIC_CHALLENGE;
  return { status: err.status, headers, json: errorBody(err.code, err.message) };
}

/** Runs `check` (requireRead/requireWrite); null when allowed, else the response to send. */
export function authorize(
  check: (headers: Record<string, string>) => void,
  req: Pick<HttpRequest, 'headers'>,
): HttpResponse | null {
  try {
    check(req.headers);
    return null;
  } catch (err) {
    if (err instanceof HttpError) return refusal(err);
    throw err;
  }
}

/** A GET handler behind the read check, answering 401 with the Basic challenge. */
export function withRead(auth: ConsoleAuth, handler: Handler): Handler {
  return (req) => authorize((h) => auth.requireRead(h), req) ?? handler(req);
}
