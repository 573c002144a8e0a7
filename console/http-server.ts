/**
 * Adapts the pure Router to uWebSockets.js: reads the request synchronously (uWS invalidates it
 * after the first await), caps the body, answers JSON errors with a code, and never writes to an
 * aborted response.
 */

import type { TemplatedApp, HttpRequest as UwsRequest, HttpResponse as UwsResponse } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { clientAddress, NO_TRUSTED_PROXIES, type TrustedProxies } from '../shared/client-address.js';
import { coerceError } from '../shared/errors.js';
import { type GuardOptions, guardRequest, responseHeaders } from './http-guard.js';
import { errorBody, HttpError, type HttpResponse, type Router, type StreamSink } from './router.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`;
}

/** A response that stays open (server-sent events); the handler writes through `send`. */
export interface StreamingResponse {
  status?: number;
  stream: (out: StreamSink) => void;
  headers?: Record<string, string>;
}

/**
 * Bytes a stream may have waiting in uWS for a client that does not read before it is closed:
 * a watcher that stalls must not make the gateway hold its output without bound.
 */
export const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

export interface HttpServerOptions {
  router: Router;
  maxBodyBytes: number;
  logger: Logger;
  /** The Host allowlist and Origin check (http-guard.ts); without it every request goes on. */
  guard?: GuardOptions;
  /** Balancers whose PROXY v2 header or X-Forwarded-For names the client (default none). */
  trustedProxies?: TrustedProxies;
}

/** Refused Host values logged, at most: a scanner must not fill the log. */
const MAX_LOGGED_HOSTS = 100;

function writeResponse(res: UwsResponse, response: HttpResponse): void {
  const body = response.raw ?? (response.json === undefined ? '' : JSON.stringify(response.json));
  res.cork(() => {
    res.writeStatus(statusLine(response.status));
    const headers = responseHeaders(response.headers);
    if (response.raw === undefined && !headers['content-type'])
      res.writeHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    res.end(body);
  });
}

export function mountRouter(app: TemplatedApp, options: HttpServerOptions): void {
  const { router, maxBodyBytes, logger, guard } = options;
  const trusted = options.trustedProxies ?? NO_TRUSTED_PROXIES;
  const loggedHosts = new Set<string>();
  app.any('/*', (res: UwsResponse, req: UwsRequest) => {
    const state = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const path = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const headers: Record<string, string> = {};
    req.forEach((k, v) => {
      headers[k.toLowerCase()] = v;
    });
    const remote = clientAddress(
      Buffer.from(res.getRemoteAddressAsText()).toString(),
      trusted.empty ? '' : Buffer.from(res.getProxiedRemoteAddressAsText()).toString(),
      headers['x-forwarded-for'] ?? '',
      trusted,
    );
    const respond = (response: HttpResponse) => {
      if (!state.aborted) writeResponse(res, response);
    };
    const fail = (status: number, code: string, message: string) =>
      respond({ status, json: errorBody(code, message) });

    const refused = guard ? guardRequest({ method, path, headers }, guard) : null;
    if (refused) {
      const host = headers.host ?? '';
      if (refused.status === 421 && loggedHosts.size < MAX_LOGGED_HOSTS && !loggedHosts.has(host)) {
        loggedHosts.add(host);
        logger.warn(
          { host: host.slice(0, 200), path },
          'request refused: Host not in server.http.allowed_hosts',
        );
      }
      return respond(refused);
    }

    const found = router.match(method, path);
    if (found === 'not_found') return fail(404, 'not_found', `no route for ${path}`);
    if (found === 'method_not_allowed')
      return fail(405, 'method_not_allowed', `${method} not allowed on ${path}`);

    const run = (body: Buffer | null) => {
      Promise.resolve()
        .then(() => found.handler({ method, path, query, params: found.params, headers, body, remote }))
        .then(
          (response) => {
            if (response.stream) {
              return startStream(res, state, { ...response, stream: response.stream });
            }
            respond(response);
          },
          (err: unknown) => {
            if (err instanceof HttpError) return fail(err.status, err.code, err.message);
            logger.error({ err: coerceError(err).message, path }, 'http handler failed');
            fail(500, 'internal', 'internal error');
          },
        );
    };

    if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return run(null);
    const cap = found.options.maxBodyBytes ?? maxBodyBytes;
    const declared = Number(headers['content-length'] ?? '0');
    if (declared > cap) return fail(413, 'body_too_large', `body over ${cap} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (state.aborted || size < 0) return;
      size += chunk.byteLength;
      if (size > cap) {
        size = -1;
        fail(413, 'body_too_large', `body over ${cap} bytes`);
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) run(Buffer.concat(chunks));
    });
  });
}

function startStream(res: UwsResponse, state: { aborted: boolean }, response: StreamingResponse): void {
  const closers: (() => void)[] = [];
  let ended = false;
  let backlog = 0;
  const closeAll = () => {
    for (const c of closers.splice(0)) c();
  };
  if (!state.aborted) {
    res.onAborted(() => {
      state.aborted = true;
      closeAll();
    });
    // uWS keeps what a write could not send; the next write that reports everything sent
    // (buffer drained) resets the count. Not onWritable: it fires whenever *some* bytes can go,
    // so a client reading slowly but steadily would keep resetting it and grow the buffer.
    res.onWritable(() => true);
    res.cork(() => {
      res.writeStatus(statusLine(response.status ?? 200));
      for (const [k, v] of Object.entries(responseHeaders(response.headers))) res.writeHeader(k, v);
      res.write('');
    });
  }
  const sink: StreamSink = {
    send(chunk: string): boolean {
      if (state.aborted || ended) return false;
      let ok = true;
      res.cork(() => {
        ok = res.write(chunk);
      });
      if (ok) {
        backlog = 0;
      } else {
        backlog += Buffer.byteLength(chunk);
        if (backlog > MAX_STREAM_BACKLOG_BYTES) {
          // Not reading: drop the client rather than buffer its output without bound.
          ended = true;
          res.close();
          closeAll();
          return false;
        }
      }
      return ok;
    },
    end(): void {
      if (state.aborted || ended) return;
      ended = true;
      res.cork(() => res.end());
      closeAll();
    },
    onClose(cb: () => void): void {
      if (state.aborted || ended) cb();
      else closers.push(cb);
    },
  };
  // Always handed over, even to a client that left while the handler ran: onClose then fires at
  // once, so whatever the handler reserved is released.
  response.stream(sink);
}
