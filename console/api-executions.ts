/**
 * `GET /api/v1/executions/{id}` (what an execution printed and how it ended) and
 * `GET /api/v1/executions/{id}/stream` (the same, live, as server-sent events). Streams are
 * bounded per gateway (past `max`, 503 `too_many_streams`) and per client (past `maxPerClient`,
 * 429 `too_many_client_streams`), so one client cannot hold every slot.
 */
import { createHash } from 'node:crypto';
import type { ConsoleAuth } from './auth.js';
import { type ExecutionSources, findExecution } from './execution-lookup.js';
import { type ExecutionStreamDeps, openExecutionStream } from './execution-stream.js';
import { HttpError, type HttpRequest, type HttpResponse, type Router, type StreamSink } from './router.js';

/**
 * The streams a gateway serves: a bounded number of slots in all and per client, and the open
 * ones, so shutting down ends them (an open stream would keep the process alive).
 */
export class OpenStreams {
  private reserved = 0;
  private readonly perClient = new Map<string, number>();
  private readonly sinks = new Set<StreamSink>();

  constructor(
    readonly max: number,
    readonly maxPerClient: number = DEFAULT_MAX_STREAMS_PER_CLIENT,
  ) {}

  get size(): number {
    return this.reserved;
  }

  /** Takes a slot for `client`, or says which bound is reached. */
  reserve(client: string): 'ok' | 'full' | 'client_full' {
    if (this.reserved >= this.max) return 'full';
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.maxPerClient) return 'client_full';
    this.reserved++;
    this.perClient.set(client, held + 1);
    return 'ok';
  }

  release(client: string): void {
    this.reserved--;
    const held = (this.perClient.get(client) ?? 1) - 1;
    if (held > 0) this.perClient.set(client, held);
    else this.perClient.delete(client);
  }

  /** The slot is now this sink's; it is released when the sink closes. */
  attach(sink: StreamSink, client: string): void {
    this.sinks.add(sink);
    sink.onClose(() => {
      if (this.sinks.delete(sink)) this.release(client);
    });
  }

  endAll(): void {
    for (const sink of [...this.sinks]) sink.end();
  }
}

/**
 * Who a stream counts against: the API token when a valid one is presented (hashed: never kept
 * as is; an invalid one would let a client pick as many buckets as it likes), else the peer
 * address. Behind a reverse proxy, anonymous viewers share the proxy's address.
 */
export function streamClient(auth: ConsoleAuth, req: Pick<HttpRequest, 'headers' | 'remote'>): string {
  const token = auth.validToken(req.headers);
  if (token) return `token:${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`;
  return `addr:${req.remote ?? 'unknown'}`;
}

export interface ExecutionRouteDeps {
  auth: ConsoleAuth;
  sources: ExecutionSources;
  stream: Omit<ExecutionStreamDeps, 'readRecords' | 'ended'>;
  /** The slots (their number bounds concurrent streams) and the open streams. */
  streams: OpenStreams;
}

export const DEFAULT_MAX_STREAMS = 500;
/** Streams one client (one API token, or one address without a token) may hold at once. */
export const DEFAULT_MAX_STREAMS_PER_CLIENT = 20;
export const STREAM_PING_MS = 15_000;

const API = '/api/v1';

export function mountExecutionRoutes(router: Router, deps: ExecutionRouteDeps): void {
  const { streams } = deps;

  router.get(`${API}/executions/:id`, async (req) => {
    deps.auth.requireRead(req.headers);
    const id = req.params.id as string;
    const found = await findExecution(id, deps.sources);
    if (!found) throw new HttpError(404, 'not_found', `no execution "${id}"`);
    return { status: 200, json: { execution: found.execution, output: found.output } };
  });

  router.get(`${API}/executions/:id/stream`, async (req): Promise<HttpResponse> => {
    deps.auth.requireRead(req.headers);
    const id = req.params.id as string;
    // HEAD shares GET's routes; it must not take a stream slot and a subscription.
    if (req.method === 'HEAD')
      return { status: 200, headers: { 'content-type': 'text/event-stream' }, raw: '' };
    // Reserved before the first await, so concurrent requests cannot pass the cap together.
    const client = streamClient(deps.auth, req);
    const slot = streams.reserve(client);
    if (slot === 'full')
      throw new HttpError(503, 'too_many_streams', `this gateway serves ${streams.max} streams at most`);
    if (slot === 'client_full')
      throw new HttpError(
        429,
        'too_many_client_streams',
        `one client may hold ${streams.maxPerClient} streams at once; close one first`,
      );
    let attach: Awaited<ReturnType<typeof openExecutionStream>>;
    try {
      const known = await findExecution(id, deps.sources, { withOutput: false });
      if (!known) throw new HttpError(404, 'not_found', `no execution "${id}"`);
      attach = await openExecutionStream(id, {
        ...deps.stream,
        readRecords: (x) => deps.sources.readRecords(x, false),
        ended: async (x) => {
          const now = await findExecution(x, deps.sources, { withOutput: false });
          // Forgotten everywhere (expired) is over too: nothing will ever end it.
          if (!now) return { outcome: null };
          return now.execution.done ? { outcome: now.execution.outcome } : null;
        },
      });
    } catch (err) {
      streams.release(client);
      throw err;
    }
    return {
      status: 200,
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        // Reverse proxies (nginx) would otherwise hold the events back in their buffers.
        'x-accel-buffering': 'no',
      },
      stream: (sink) => {
        streams.attach(sink, client);
        attach(sink);
      },
    };
  });
}
