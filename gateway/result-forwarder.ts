/**
 * Agent results → BullMQ jobs, acknowledged only after the enqueue resolved. Messages that arrive
 * in the same event-loop turn go out in one addBulk (one round trip for many agents); acks are
 * grouped per socket. A failed or timed-out enqueue sends no ack: the agent keeps the result and
 * re-sends it, to this gateway or another.
 */
import type { Logger } from '../shared/logger.js';
import { type ForwardedMessage, type JobSpec, resultJob } from './jobs.js';

/** The slice of a BullMQ Queue the gateway needs (a port, so tests can fail it on purpose). */
export interface JobQueue {
  add(name: string, data: unknown, opts: JobSpec<unknown>['opts']): Promise<unknown>;
  addBulk(jobs: Array<JobSpec<unknown>>): Promise<unknown>;
}

/** Whoever sent the message; `ack` must drop silently if the socket has gone. */
export interface ResultSource {
  readonly agent: string;
  readonly sessionId: string;
  ack(resultIds: string[]): void;
}

export interface ResultForwarderOptions {
  queue: JobQueue;
  gatewayId: string;
  /** An enqueue slower than this counts as failed (Redis down: ioredis would queue forever). */
  timeoutMs: number;
  /** Results waiting for the next batch beyond this are refused (not acked; the agent re-sends). */
  maxPending: number;
  logger: Logger;
  onBatch?: (outcome: { ok: boolean; count: number; error?: string }) => void;
}

interface Pending {
  source: ResultSource;
  message: ForwardedMessage;
  receivedAt: string;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ResultForwarder {
  private pending: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  private failing = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: ResultForwarderOptions) {}

  /** False when the backlog is full: the result is not taken and will be re-sent by the agent. */
  push(source: ResultSource, message: ForwardedMessage): boolean {
    if (this.pending.length >= this.opts.maxPending) return false;
    this.pending.push({ source, message, receivedAt: new Date().toISOString() });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    return true;
  }

  /** Resolves when every accepted result has been enqueued (or failed). */
  idle(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return this.settle();
    this.inFlight++;
    const jobs = batch.map((p) =>
      resultJob({
        kind: 'result',
        agent: p.source.agent,
        session_id: p.source.sessionId,
        gateway_id: this.opts.gatewayId,
        received_at: p.receivedAt,
        message: p.message,
      }),
    );
    try {
      await withTimeout(this.opts.queue.addBulk(jobs), this.opts.timeoutMs, 'enqueue results');
      if (this.failing) {
        this.failing = false;
        this.opts.logger.info('results enqueue recovered');
      }
      this.ackAll(batch);
      this.opts.onBatch?.({ ok: true, count: batch.length });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (!this.failing) {
        this.failing = true;
        this.opts.logger.error(
          { err: error, count: batch.length },
          'results enqueue failed; not acknowledging',
        );
      }
      this.opts.onBatch?.({ ok: false, count: batch.length, error });
    } finally {
      this.inFlight--;
      this.settle();
    }
  }

  private ackAll(batch: Pending[]): void {
    const bySource = new Map<ResultSource, string[]>();
    for (const p of batch) {
      if (p.message.type === 'instruction_receipt') continue; // receipts carry no result id
      const ids = bySource.get(p.source);
      if (ids) ids.push(p.message.result_id);
      else bySource.set(p.source, [p.message.result_id]);
    }
    for (const [source, ids] of bySource) source.ack(ids);
  }

  private settle(): void {
    if (this.pending.length > 0 || this.inFlight > 0 || this.scheduled) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
