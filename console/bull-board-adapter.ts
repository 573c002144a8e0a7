/**
 * Bull Board's server adapter for our own uWS console router (no express, no hono): bull-board
 * hands over its JSON routes, its entry view (index.ejs) and its static folder; this serves them
 * under one base path through a single `handle(req)`.
 *
 * - Static files: the folder is listed once at start; a request can only name a file in that list
 *   (no path is ever joined from request input). Contents are read on first use and kept.
 * - The view: bull-board's template uses only `<%= x %>` (escaped) and `<%- uiConfig %>` (JSON
 *   that bull-board already escaped for a script tag). We substitute exactly those and refuse a
 *   template with any other tag, rather than pull in a template engine. The Google Fonts link is
 *   dropped: an operations console makes no third-party requests (the system font is used).
 * - API routes: matched in bull-board's order (express semantics: first match wins), called with
 *   the request bull-board expects, errors through bull-board's own error handler.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import type {
  AppControllerRoute,
  AppViewRoute,
  BullBoardQueues,
  ControllerHandlerReturnType,
  IServerAdapter,
  UIConfig,
} from '@bull-board/api/typings/app';
import { coerceError } from '../shared/errors.js';
import { errorBody, type HttpRequest, type HttpResponse } from './router.js';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** The board page: its own scripts and styles only (the template has inline style attributes). */
export const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface ApiRoute {
  method: string;
  parts: string[];
  handler: AppControllerRoute['handler'];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Fills bull-board's index template; throws on any tag it does not know how to fill safely. */
export function renderBoardTemplate(template: string, params: Record<string, string>): string {
  const filled = template
    .replace(/<link[^>]*fonts\.googleapis\.com[^>]*>\s*/g, '')
    .replace(/<%([=-])\s*(\w+)\s*%>/g, (_all, kind: string, name: string) => {
      const value = params[name];
      if (value === undefined) throw new Error(`bull-board template: no value for ${name}`);
      // `<%-` is used only for uiConfig, which entryPoint() serialised with < and > escaped.
      if (kind === '-' && name !== 'uiConfig') throw new Error(`bull-board template: raw ${name}`);
      return kind === '=' ? escapeHtml(value) : value;
    });
  if (filled.includes('<%')) throw new Error('bull-board template has tags this adapter does not render');
  return filled;
}

function matchParts(parts: string[], segments: string[]): Record<string, string> | null {
  if (parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const seg = segments[i] as string;
    if (part.startsWith(':')) params[part.slice(1)] = seg;
    else if (part !== seg) return null;
  }
  return params;
}

function listFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !TYPES[extname(entry.name)]) continue;
    // `parentPath` from Node 20.12; `path` (deprecated since) before it.
    const full = join(entry.parentPath ?? (entry as { path?: string }).path ?? '', entry.name);
    files.set(relative(dir, full).split(sep).join('/'), full);
  }
  return files;
}

export class UwsBoardAdapter implements IServerAdapter {
  private queues: BullBoardQueues | null = null;
  private viewsPath = '';
  private staticRoute = '/static';
  private staticFiles = new Map<string, string>();
  private readonly staticCache = new Map<string, Buffer>();
  private entry: { route: AppViewRoute; paths: string[][] } | null = null;
  private template: string | null = null;
  private errorHandler: ((error: Error) => ControllerHandlerReturnType) | null = null;
  private api: ApiRoute[] = [];
  private uiConfig: UIConfig = {};

  /** `basePath` is where the board is mounted, e.g. `/queues`. */
  constructor(readonly basePath: string) {}

  setQueues(queues: BullBoardQueues): this {
    this.queues = queues;
    return this;
  }
  setViewsPath(viewPath: string): this {
    this.viewsPath = viewPath;
    return this;
  }
  setStaticPath(staticsRoute: string, staticsPath: string): this {
    this.staticRoute = staticsRoute;
    this.staticFiles = listFiles(staticsPath);
    return this;
  }
  setEntryRoute(route: AppViewRoute): this {
    const routes = Array.isArray(route.route) ? route.route : [route.route];
    this.entry = { route, paths: routes.map((r) => r.split('/').filter(Boolean)) };
    return this;
  }
  setErrorHandler(handler: (error: Error) => ControllerHandlerReturnType): this {
    this.errorHandler = handler;
    return this;
  }
  setApiRoutes(routes: AppControllerRoute[]): this {
    this.api = routes.flatMap((r) =>
      (Array.isArray(r.method) ? r.method : [r.method]).flatMap((method) =>
        (Array.isArray(r.route) ? r.route : [r.route]).map((route) => ({
          method: method.toUpperCase(),
          parts: route.split('/').filter(Boolean),
          handler: r.handler,
        })),
      ),
    );
    return this;
  }
  setUIConfig(config: UIConfig): this {
    this.uiConfig = config;
    return this;
  }

  /** Serves one request whose path starts with the base path. */
  async handle(req: HttpRequest): Promise<HttpResponse> {
    let segments: string[];
    try {
      segments = req.path
        .slice(this.basePath.length)
        .split('/')
        .filter(Boolean)
        .map((s) => decodeURIComponent(s));
    } catch {
      return notFound(req.path);
    }
    const staticParts = this.staticRoute.split('/').filter(Boolean);
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (staticParts.every((p, i) => segments[i] === p) && segments.length > staticParts.length)
        return this.serveStatic(segments.slice(staticParts.length).join('/'), req.path);
      if (this.entry?.paths.some((p) => matchParts(p, segments))) return this.serveEntry();
    }
    for (const route of this.api) {
      if (route.method !== req.method && !(req.method === 'HEAD' && route.method === 'GET')) continue;
      const params = matchParts(route.parts, segments);
      if (params) return this.callApi(route, params, req);
    }
    return notFound(req.path);
  }

  private async serveStatic(name: string, path: string): Promise<HttpResponse> {
    const full = this.staticFiles.get(name);
    if (!full) return notFound(path);
    let body = this.staticCache.get(name);
    if (!body) {
      body = await readFile(full);
      this.staticCache.set(name, body);
    }
    return {
      status: 200,
      headers: {
        'content-type': TYPES[extname(name)] ?? 'application/octet-stream',
        'cache-control': 'public, max-age=3600',
        'x-content-type-options': 'nosniff',
      },
      raw: body,
    };
  }

  private serveEntry(): HttpResponse {
    if (!this.entry) return notFound(this.basePath);
    const view = this.entry.route.handler({ basePath: this.basePath, uiConfig: this.uiConfig });
    this.template ??= readFileSync(join(this.viewsPath, view.name), 'utf8');
    return {
      status: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': BOARD_CSP,
        'x-frame-options': 'DENY',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      },
      raw: renderBoardTemplate(this.template, view.params),
    };
  }

  private async callApi(
    route: ApiRoute,
    params: Record<string, string>,
    req: HttpRequest,
  ): Promise<HttpResponse> {
    if (!this.queues) return { status: 503, json: errorBody('not_ready', 'bull board has no queues yet') };
    let body: Record<string, unknown> = {};
    if (req.body && req.body.length > 0) {
      try {
        const parsed: unknown = JSON.parse(req.body.toString('utf8'));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
          body = parsed as Record<string, unknown>;
      } catch {
        return { status: 400, json: errorBody('bad_json', 'request body is not valid JSON') };
      }
    }
    let result: ControllerHandlerReturnType;
    try {
      result = await route.handler({
        queues: this.queues,
        uiConfig: this.uiConfig,
        query: Object.fromEntries(req.query),
        params,
        body,
        headers: req.headers,
      });
    } catch (err) {
      const error = coerceError(err);
      if (!this.errorHandler) throw error;
      result = this.errorHandler(error);
    }
    const status = result.status ?? 200;
    if (status === 204) return { status, raw: '' };
    return { status, headers: { 'cache-control': 'no-store' }, json: result.body };
  }
}

function notFound(path: string): HttpResponse {
  return { status: 404, json: errorBody('not_found', `no route for ${path}`) };
}
