/**
 * Serves the web UI (gateway/console/ui/): `/` is index.html, `/ui/<file>` the assets. The files
 * are read once at mount into a map keyed by file name, so a request can only ever name a file
 * that was in that one flat folder at start: no path is joined from request input, and `..`,
 * encoded slashes or sub-paths simply miss the map.
 *
 * The folder holds .js/.css/.html that tsc does not copy to dist/, so it is found from the package
 * root (which `shared/paths.ts` resolves from source and from dist/ alike), never next to this file.
 *
 * The shell is served without a token even when reads need one: it carries no data, and every API
 * call it makes sends the token the user stored.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.js';
import { packageRoot } from '../shared/paths.js';
import { errorBody, type HttpRequest, type HttpResponse, type Router } from './router.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Scripts, styles and fetches only from this origin; no inline script, no framing. Text from the
 * API is always set as text (never HTML), and this is the second line of defence should that slip.
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** The UI folder of this installation. */
export function defaultUiDir(): string {
  return join(packageRoot, 'console', 'ui');
}

/** Reads every regular file of known type directly inside `dir` (no sub-folders). */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name).toLowerCase()];
    if (!type || name.startsWith('.')) continue;
    const full = join(dir, name);
    if (!statSync(full).isFile()) continue;
    const body = readFileSync(full);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    files.set(name, { body, type, etag });
  }
  return files;
}

/** `If-None-Match` may list several tags, or `*`; weak tags compare equal too. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}

export function serveFile(file: StaticFile, req: Pick<HttpRequest, 'headers'>): HttpResponse {
  const headers: Record<string, string> = {
    'content-type': file.type,
    etag: file.etag,
    // Revalidate every time: a gateway upgrade must never leave an old app.js next to a new API.
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (file.type.startsWith('text/html')) {
    headers['content-security-policy'] = UI_CSP;
    headers['x-frame-options'] = 'DENY';
  }
  if (matchesEtag(req.headers['if-none-match'], file.etag)) return { status: 304, headers, raw: '' };
  return { status: 200, headers, raw: file.body };
}

export interface UiOptions {
  /** Defaults to the installation's gateway/console/ui/. */
  dir?: string;
  logger?: Logger;
}

/** Adds `GET /` and `GET /ui/<file>` to the console router. */
export function mountUi(router: Router, options: UiOptions = {}): Router {
  const dir = options.dir ?? defaultUiDir();
  let files: Map<string, StaticFile>;
  try {
    files = loadStaticFiles(dir);
  } catch (err) {
    // A broken install must not take the API down with it; the UI routes say what is missing.
    options.logger?.warn({ dir, err: errorMessage(err) }, 'web UI assets not found; / will answer 404');
    files = new Map();
  }
  const missing = (what: string): HttpResponse => ({
    status: 404,
    json: errorBody('not_found', `no UI file ${what}`),
  });
  router.get('/', (req) => {
    const index = files.get('index.html');
    return index ? serveFile(index, req) : missing(`index.html in ${dir}`);
  });
  router.get('/ui/:file', (req) => {
    const name = req.params.file ?? '';
    const file = files.get(name);
    return file ? serveFile(file, req) : missing(JSON.stringify(name));
  });
  return router;
}
