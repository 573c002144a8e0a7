/**
 * `GET /api/v1/executions/{id}` (what an execution printed and how it ended) and
 * `GET /api/v1/executions/{id}/stream` (the same, live, as server-sent events). Streams are
 * bounded per gateway: past `maxStreams`, 503 `too_many_streams`.
 */
import type { ConsoleAuth } from './auth.js';
import { type ExecutionSources, findExecution } from './execution-lookup.js';
import { type ExecutionStreamDeps, openExecutionStream } from './execution-stream.js';
import { HttpError, type HttpResponse, type Router, type StreamSink } from './router.js';

/**
 * The streams a gateway serves: a bounded number of slots, and the open ones, so shutting down
 * ends them (an open stream would keep the process alive).
 */
export class OpenStreams {
  private reserved = 0;
  private readonly sinks = new Set<StreamSink>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.reserved;
  }

  /** Takes a slot, or returns false when all are taken. */
  reserve(): boolean {
    if (this.reserved >= this.max) return false;
    this.reserved++;
    return true;
  }

  release(): void {
    this.reserved--;
  }

  /** The slot is now this sink's; it is released when the sink closes. */
  attach(sink: StreamSink): void {
    this.sinks.add(sink);
    sink.onClose(() => {
      if (this.sinks.delete(sink)) this.release();
    });
  }

  endAll(): void {
    for (const sink of [...this.sinks]) sink.end();
  }
}

export interface ExecutionRouteDeps {
  auth: ConsoleAuth;
  sources: ExecutionSources;
  stream: Omit<ExecutionStreamDeps, 'readRecords' | 'ended'>;
  /** The slots (their number bounds concurrent streams) and the open streams. */
  streams: OpenStreams;
}

export const DEFAULT_MAX_STREAMS = 500;
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
    if (!streams.reserve()) {
      throw new HttpError(503, 'too_many_streams', `this gateway serves ${streams.max} streams at most`);
    }
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
      streams.release();
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
        streams.attach(sink);
        attach(sink);
      },
    };
  });
}
