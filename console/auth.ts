/**
 * Who may do what on `listen_http`. Writes (POST) always need an API token; reads need one only
 * when `server.api_read_access = "token"`. A token arrives as `Authorization: Bearer <token>` or,
 * for pages a browser opens directly (Bull Board), `Authorization: Basic` with the token as the
 * password, so the browser's own prompt works. Never cookies: there is no CSRF path.
 */
import { bearerToken, createTokenVerifier } from '../shared/auth.js';
import { HttpError } from './router.js';

export interface ConsoleAuthOptions {
  apiTokens: readonly string[];
  readAccess: 'open' | 'token';
}

export interface ConsoleAuth {
  readonly readAccess: 'open' | 'token';
  /** Throws 401/403 HttpError unless reads are open or the headers carry a valid API token. */
  requireRead(headers: Record<string, string>): void;
  /** Throws 403 `api_read_only` / 401 / 403 unless the headers carry a valid API token. */
  requireWrite(headers: Record<string, string>): void;
  /** The presented API token when it is a valid one, else null (who a client is, for limits). */
  validToken(headers: Record<string, string>): string | null;
}

/** The token from `Bearer <t>` or from the password of `Basic base64(user:t)`. */
export function presentedToken(authorization: string | undefined): string | null {
  const bearer = bearerToken(authorization);
  if (bearer) return bearer;
  const m = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const password = colon >= 0 ? decoded.slice(colon + 1) : '';
  return password.length > 0 ? password : null;
}

export function createConsoleAuth(options: ConsoleAuthOptions): ConsoleAuth {
  const verify = createTokenVerifier({ agent_tokens: options.apiTokens, scoped_agent_tokens: [] });
  const hasTokens = options.apiTokens.length > 0;
  const check = (headers: Record<string, string>, what: string): void => {
    const token = presentedToken(headers.authorization);
    if (!token)
      throw new HttpError(401, 'unauthorized', `missing Authorization: Bearer <api token> (${what})`);
    if (!verify(token)) throw new HttpError(403, 'forbidden', 'API token refused');
  };
  return {
    readAccess: options.readAccess,
    requireRead(headers) {
      if (options.readAccess === 'open') return;
      check(headers, 'reads need an API token: api_read_access = "token"');
    },
    validToken(headers) {
      const token = presentedToken(headers.authorization);
      return token && verify(token) ? token : null;
    },
    requireWrite(headers) {
      if (!hasTokens)
        throw new HttpError(403, 'api_read_only', 'no api_tokens are configured: the API is read-only');
      check(headers, 'state changes need an API token');
    },
  };
}
