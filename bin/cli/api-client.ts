/**
 * The CLI's HTTP client for `/api/v1`. Built on node:http/https rather than fetch: fetch refuses
 * some ports outright ("bad port") and hides the socket error code under `cause`, and the
 * messages here must name what went wrong (ECONNREFUSED, ENOTFOUND, a certificate problem).
 * HTTPS trusts the system CAs plus NODE_EXTRA_CA_CERTS, as every node tool does.
 */
import http from 'node:http';
import https from 'node:https';
import { CliError, EXIT } from './cli-error.js';

export interface ApiClientOptions {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:7071`. */
  server: string;
  /** Sent as `Authorization: Bearer` on every request, reads included (api_read_access = "token"). */
  token: string | null;
  /** No byte from the server for this long fails the request (default 30 s). */
  timeoutMs?: number;
  /** The same for an event stream, whose server pings every 15 s (default 60 s). */
  streamIdleMs?: number;
}

export type Query = Record<string, string | number | null | undefined>;

/** The biggest JSON answer read into memory; lists are paged well below this. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** Lists are fetched in pages of this size (the API allows up to 1000). */
export const PAGE_SIZE = 500;
/** The stream endpoint sends a comment every 15 s; this much silence means the server is gone. */
const STREAM_IDLE_MS = 60_000;

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_SSL|ERR_TLS|EPROTO/;

export interface EventStream {
  /** Decoded text as it arrives; ends when the server closes the response. */
  chunks: AsyncIterable<string>;
  close(): void;
}

export class ApiClient {
  private readonly timeoutMs: number;

  constructor(private readonly opts: ApiClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  get server(): string {
    return this.opts.server;
  }

  async get<T>(path: string, query: Query = {}): Promise<T> {
    return (await this.json('GET', path, query)) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return (await this.json('POST', path, {}, JSON.stringify(body))) as T;
  }

  /**
   * Every item of a paged list: follows `next_cursor` until it is null (or absent, as from a
   * server that does not page that list yet).
   */
  async delete<T>(path: string): Promise<T> {
    return (await this.json('DELETE', path, {})) as T;
  }

  async getAll<T>(path: string, key: string, query: Query = {}, pageSize = PAGE_SIZE): Promise<T[]> {
    const items: T[] = [];
    const seen = new Set<string>();
    let cursor: string | null = null;
    for (;;) {
      const page: Record<string, unknown> = await this.get(path, { ...query, limit: pageSize, cursor });
      const list = page[key];
      if (!Array.isArray(list))
        throw new CliError(`unexpected answer from ${this.url(path)}: no "${key}" list`);
      items.push(...(list as T[]));
      const next: unknown = page.next_cursor;
      if (typeof next !== 'string' || next === '') return items;
      // A server that hands back a cursor it already gave would page forever.
      if (seen.has(next)) throw new CliError(`${this.url(path)} returned the same cursor twice`);
      seen.add(next);
      cursor = next;
    }
  }

  /** Opens a server-sent-events response; errors (404, 401, …) are thrown as for JSON calls. */
  async stream(path: string): Promise<EventStream> {
    const idle = this.opts.streamIdleMs ?? STREAM_IDLE_MS;
    const res = await this.request('GET', path, {}, undefined, 'text/event-stream', idle);
    if ((res.statusCode ?? 0) >= 300)
      throw this.failure('GET', res.statusCode ?? 0, await readBody(this.opts.server, res), path);
    res.setEncoding('utf8');
    const server = this.opts.server;
    async function* chunks(): AsyncGenerator<string> {
      try {
        for await (const chunk of res) yield chunk as string;
      } catch (err) {
        throw cutOff(server, res, err);
      }
    }
    return { chunks: chunks(), close: () => res.destroy() };
  }

  url(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
    const qs = params.toString();
    return `${this.opts.server}${path}${qs ? `?${qs}` : ''}`;
  }

  private async json(method: string, path: string, query: Query, body?: string): Promise<unknown> {
    const res = await this.request(method, path, query, body, 'application/json', this.timeoutMs);
    const text = await readBody(this.opts.server, res);
    const status = res.statusCode ?? 0;
    if (status >= 300) throw this.failure(method, status, text, path);
    try {
      return JSON.parse(text);
    } catch {
      throw new CliError(
        `unexpected answer from ${this.url(path, query)}: ${status} ${res.headers['content-type'] ?? ''} is not JSON — is --server pointing at Fluke?`,
      );
    }
  }

  private request(
    method: string,
    path: string,
    query: Query,
    body: string | undefined,
    accept: string,
    idleMs: number,
  ): Promise<http.IncomingMessage> {
    const url = new URL(this.url(path, query));
    const headers: Record<string, string> = { accept, 'user-agent': 'fluke-cli' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let response: http.IncomingMessage | null = null;
      const req = lib.request(url, { method, headers }, (res) => {
        response = res;
        res.on('error', () => {
          // Reported by whoever reads the body.
        });
        resolve(res);
      });
      req.setTimeout(idleMs, () => {
        // Once the answer has begun, its reader sees only "aborted": mark why.
        if (response) silent.set(response, idleMs);
        req.destroy(Object.assign(new Error(`no answer within ${idleMs / 1000}s`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (err) => reject(unreachable(this.opts.server, err)));
      req.end(body);
    });
  }

  private failure(method: string, status: number, text: string, path: string): CliError {
    let message = text.trim().slice(0, 500) || `HTTP ${status}`;
    let code: string | null = null;
    try {
      const parsed = JSON.parse(text) as { error?: unknown; code?: unknown };
      if (typeof parsed.error === 'string') message = parsed.error;
      if (typeof parsed.code === 'string') code = parsed.code;
    } catch {
      // not JSON: keep the text
    }
    if (status === 401 || status === 403) {
      const hint =
        code === 'api_read_only'
          ? ''
          : this.opts.token
            ? " — FLUKE_API_TOKEN is not accepted; it must be one of the server's api_tokens"
            : " — set FLUKE_API_TOKEN to one of the server's api_tokens";
      return new CliError(
        `${this.opts.server} refused the request (${status}): ${message}${hint}`,
        EXIT.AUTH,
        code,
      );
    }
    if (status === 404) return new CliError(`not found: ${message}`, EXIT.FAILURE, code ?? 'not_found');
    return new CliError(
      `${method} ${path} failed (${status}${code ? ` ${code}` : ''}): ${message}`,
      EXIT.FAILURE,
      code,
    );
  }
}

function readBody(server: string, res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy();
        reject(new CliError(`answer over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (err) => reject(cutOff(server, res, err)));
  });
}

/** Responses whose request was destroyed for silence, with the idle limit that ran out. */
const silent = new WeakMap<http.IncomingMessage, number>();

/** An answer that stopped mid-way: the server went silent, or the connection dropped. */
function cutOff(server: string, res: http.IncomingMessage, err: unknown): CliError {
  const idleMs = silent.get(res);
  if (idleMs !== undefined)
    return new CliError(
      `cannot reach Fluke at ${server}: ETIMEDOUT (nothing received for ${idleMs / 1000}s) — is the server healthy?`,
      EXIT.UNREACHABLE,
      'ETIMEDOUT',
    );
  const e = err as NodeJS.ErrnoException;
  return new CliError(
    `the answer from ${server} was cut off: ${e.code ?? e.message ?? String(err)}`,
    EXIT.UNREACHABLE,
    e.code ?? null,
  );
}

/** The one message for "there is no Fluke there", naming the socket error. */
export function unreachable(server: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? e.message ?? String(err);
  const hint = TLS_CODES.test(code)
    ? ` (${e.message}) — for a private CA set NODE_EXTRA_CA_CERTS to its certificate file`
    : code === 'ETIMEDOUT'
      ? ` (${e.message}) — is --server right and the server healthy?`
      : ' — is the server running? set --server or FLUKE_SERVER';
  return new CliError(`cannot reach Fluke at ${server}: ${code}${hint}`, EXIT.UNREACHABLE, code);
}
