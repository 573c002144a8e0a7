/**
 * Agent results → BullMQ jobs, acknowledged only after the enqueue resolved. Messages that arrive
 * in the same event-loop turn become a few batched `results` jobs (≤ RESULTS_PER_JOB messages
 * each, an (agent, session)'s messages kept together and in order), added with addBulk in chunks
 * of ≤ ENQUEUE_CHUNK jobs; acks are grouped per socket and sent as each chunk resolves. A failed
 * or timed-out enqueue sends no ack: the agent keeps the result and re-sends it, to this gateway
 * or another. A result re-sent to this gateway after it was enqueued is acked without a new job.
 */

import { errorMessage } from '../shared/errors.js';
import { resultsJob } from '../shared/jobs/builders.js';
import type { JobSpec } from '../shared/jobs/options.js';
import { type ForwardedMessage, RESULTS_PER_JOB, type ResultItem } from '../shared/jobs/payloads.js';
import type { Logger } from '../shared/logger.js';
import { withTimeout } from '../shared/with-timeout.js';
import { RecentResultIds } from './recent-result-ids.js';

export { RecentResultIds };

/** Jobs per addBulk call: one huge addBulk timed out under a registration storm. */
export const ENQUEUE_CHUNK = 1000;
/**
 * Result ids remembered as enqueued, to ack a re-send without a second job: the last 50,000 to
 * 100,000 (two generations of 50,000).
 */
const RECENT_IDS = 50_000;
/**
 * Enqueues running at once. Under a burst (thousands of agents answering a cycle together) an
 * unbounded number of concurrent addBulks only queue up inside Redis until they pass the
 * enqueue timeout and go unacknowledged; with a bound, results wait here instead and leave in
 * fewer, fuller jobs.
 */
const MAX_IN_FLIGHT = 2;

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
  /**
   * Asked after each chunk is enqueued, on the queue's connection, before any ack: has a replica
   * got it (store/redis/replica-wait.ts)? Not ok: no ack (the agent re-sends; result handlers are
   * idempotent) and `onUnreplicated`. Absent: acked once the master has it.
   */
  replicas?: { confirm(): Promise<{ ok: boolean; replicas: number }> };
  onUnreplicated?: (outcome: { count: number }) => void;
}

interface Pending {
  source: ResultSource;
  message: ForwardedMessage;
  receivedAt: string;
}

export class ResultForwarder {
  private pending: Pending[] = [];
  /**
   * Results taken for an enqueue that has not settled: in flight, or timed out while the Redis
   * client still holds the command (it sends it when Redis is back). They count against
   * maxPending, so an outage cannot pile up one backlog per timeout.
   */
  private held = 0;
  private scheduled = false;
  private inFlight = 0;
  private enqueueFailed = false;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly recent = new RecentResultIds(RECENT_IDS);

  constructor(private readonly opts: ResultForwarderOptions) {}

  /** Whether the last enqueue failed or timed out (Redis down or slow), until one succeeds. */
  get failing(): boolean {
    return this.enqueueFailed;
  }

  /** False when the backlog is full: the result is not taken and will be re-sent by the agent. */
  push(source: ResultSource, message: ForwardedMessage, receivedAt = isoNow()): boolean {
    return this.pushAll(source, [message], receivedAt) === 1;
  }

  /**
   * Several messages from one source (one `results` frame), read at `receivedAt`. Takes them in
   * order while the backlog has room and returns how many it took: the rest are refused, each as
   * a single message would be (no ack, so the agent re-sends them).
   */
  pushAll(source: ResultSource, messages: readonly ForwardedMessage[], receivedAt = isoNow()): number {
    const room = this.opts.maxPending - this.pending.length - this.held;
    const taken = Math.max(0, Math.min(messages.length, room));
    for (let i = 0; i < taken; i++) this.pending.push({ source, message: messages[i]!, receivedAt });
    if (taken > 0) this.schedule();
    return taken;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  /** Resolves when every accepted result has been enqueued (or failed). */
  idle(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const taken = this.pending;
    this.pending = [];
    if (taken.length === 0) return this.settle();
    this.inFlight++;
    // Re-sends of results already enqueued from this gateway: acked with no second job.
    const batch: Pending[] = [];
    const repeats: Pending[] = [];
    for (const p of taken) {
      const m = p.message;
      if (m.type !== 'instruction_receipt' && this.recent.has(p.source.agent, m.result_id)) repeats.push(p);
      else batch.push(p);
    }
    if (repeats.length > 0) this.ackAll(repeats);
    if (batch.length === 0) {
      // Nothing to enqueue: says nothing about Redis, so no outcome is reported.
      this.inFlight--;
      this.schedule();
      return this.settle();
    }
    const chunks = chunkJobs(batch, this.opts.gatewayId);
    this.held += batch.length;
    let done = 0;
    let unsent = batch.length;
    try {
      for (const chunk of chunks) {
        const enqueued = chunk.flatMap((c) => c.pending);
        const adding = this.opts.queue.addBulk(chunk.map((c) => c.job));
        const count = enqueued.length;
        unsent -= count;
        // Released when the command settles, which may be long after the timeout below.
        const release = () => {
          this.held -= count;
        };
        adding.then(release, release);
        await withTimeout(adding, this.opts.timeoutMs, 'enqueue results');
        await this.confirmReplicated(count);
        this.remember(enqueued);
        this.ackAll(enqueued);
        done += enqueued.length;
      }
      if (this.enqueueFailed) {
        this.enqueueFailed = false;
        this.opts.logger.info('results enqueue recovered');
      }
      this.opts.onBatch?.({ ok: true, count: batch.length });
    } catch (err) {
      const error = errorMessage(err);
      if (!this.enqueueFailed) {
        this.enqueueFailed = true;
        this.opts.logger.error(
          { err: error, count: batch.length - done },
          'results enqueue failed; not acknowledging',
        );
      }
      this.opts.onBatch?.({ ok: false, count: batch.length - done, error });
    } finally {
      // Chunks never sent (an earlier one failed) hold nothing.
      this.held -= unsent;
      this.inFlight--;
      this.schedule();
      this.settle();
    }
  }

  /**
   * Throws when no replica confirmed the chunk: not acked and not remembered, so the agent's
   * re-send is enqueued again (the master may be gone with the first copy).
   */
  private async confirmReplicated(count: number): Promise<void> {
    if (!this.opts.replicas) return;
    const ack = await withTimeout(this.opts.replicas.confirm(), this.opts.timeoutMs, 'replica confirm');
    if (ack.ok) return;
    this.opts.onUnreplicated?.({ count });
    throw new Error(`no replica confirmed ${count} results in time (replicas acked: ${ack.replicas})`);
  }

  private remember(enqueued: Pending[]): void {
    for (const p of enqueued) {
      if (p.message.type !== 'instruction_receipt') this.recent.add(p.source.agent, p.message.result_id);
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

let isoMs = Number.NaN;
let isoText = '';
/**
 * The current time as an ISO string, formatted at most once per millisecond: a burst of frames
 * read within one millisecond shares one string instead of a Date and a toISOString each.
 */
export function isoNow(now = Date.now()): string {
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

interface ChunkJob {
  job: JobSpec<unknown>;
  pending: Pending[];
}

/**
 * Groups by source (agent, session) in arrival order, packs whole groups into jobs of at most
 * RESULTS_PER_JOB messages (a larger group is split, in order), and jobs into addBulk chunks.
 */
export function chunkJobs(batch: Pending[], gatewayId: string): ChunkJob[][] {
  const groups = new Map<ResultSource, Pending[]>();
  for (const p of batch) {
    const g = groups.get(p.source);
    if (g) g.push(p);
    else groups.set(p.source, [p]);
  }
  const jobs: ChunkJob[] = [];
  let current: Pending[] = [];
  const close = () => {
    if (current.length === 0) return;
    const items: ResultItem[] = current.map((p) => ({
      agent: p.source.agent,
      session_id: p.source.sessionId,
      received_at: p.receivedAt,
      message: p.message,
    }));
    jobs.push({ job: resultsJob({ kind: 'results', gateway_id: gatewayId, items }), pending: current });
    current = [];
  };
  for (const group of groups.values()) {
    if (current.length + group.length > RESULTS_PER_JOB) close();
    for (let i = 0; i < group.length; i += RESULTS_PER_JOB) {
      const part = group.slice(i, i + RESULTS_PER_JOB);
      if (part.length === RESULTS_PER_JOB) {
        close();
        current = part;
        close();
      } else current.push(...part);
    }
  }
  close();
  const chunks: ChunkJob[][] = [];
  for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) chunks.push(jobs.slice(i, i + ENQUEUE_CHUNK));
  return chunks;
}
