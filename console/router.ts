/**
 * A tiny pure router for the HTTP console: method + path pattern (`/api/v1/agents/:name`) →
 * handler. No I/O here; `http-server.ts` adapts it to uWebSockets.js.
 */

export interface HttpRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  params: Record<string, string>;
  headers: Record<string, string>;
  body: Buffer | null;
  /** The peer's address as text (uWS), when the server knows it. */
  remote?: string;
}

/** Where a streaming response writes (server-sent events). */
export interface StreamSink {
  /** False when the client is gone or not reading fast enough (the chunk is buffered, bounded). */
  send(chunk: string): boolean;
  end(): void;
  /** Runs once when the response ends, either side. */
  onClose(cb: () => void): void;
}

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  /** Serialized as JSON unless `raw` is given. */
  json?: unknown;
  raw?: string | Buffer;
  /**
   * Keeps the response open and hands it a sink (server-sent events). Called exactly once, even
   * when the client left already, so whatever the handler reserved is released through onClose.
   */
  stream?: (out: StreamSink) => void;
}

export type Handler = (req: HttpRequest) => Promise<HttpResponse> | HttpResponse;

export interface RouteOptions {
  /** This route's body cap, instead of the server's (a push webhook can be larger). */
  maxBodyBytes?: number;
}

/** An error a handler throws to answer with `{"error","code"}` and a status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
  options: RouteOptions;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler, options: RouteOptions = {}): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler, options });
    return this;
  }
  get(pattern: string, handler: Handler, options?: RouteOptions): this {
    return this.add('GET', pattern, handler, options);
  }
  post(pattern: string, handler: Handler, options?: RouteOptions): this {
    return this.add('POST', pattern, handler, options);
  }

  /** Finds the handler; `methodNotAllowed` when the path exists under another method. */
  match(
    method: string,
    path: string,
  ):
    | { handler: Handler; params: Record<string, string>; options: RouteOptions }
    | 'not_found'
    | 'method_not_allowed' {
    const segments = path.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchParts(route.parts, segments);
      if (!params) continue;
      pathMatched = true;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET'))
        return { handler: route.handler, params, options: route.options };
    }
    return pathMatched ? 'method_not_allowed' : 'not_found';
  }
}

function matchParts(parts: string[], segments: string[]): Record<string, string> | null {
  const last = parts[parts.length - 1];
  const wildcard = last === '*';
  if (wildcard ? segments.length < parts.length - 1 : segments.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part === '*') {
      params['*'] = segments.slice(i).join('/');
      return params;
    }
    const seg = segments[i];
    if (seg === undefined) return null;
    if (part.startsWith(':')) {
      try {
        params[part.slice(1)] = decodeURIComponent(seg);
      } catch {
        return null;
      }
    } else if (part !== seg) return null;
  }
  return params;
}

export function errorBody(code: string, message: string): { error: string; code: string } {
  return { error: message, code };
}
