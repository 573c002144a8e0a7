/**
 * Live output lines → Redis, not BullMQ: PUBLISH on the execution's channel for live watchers and
 * RPUSH onto a capped replay list for late ones. Lines of one event-loop turn share one pipeline.
 * Output is best effort by protocol: while Redis is away, lines beyond `maxPending` are dropped and
 * counted (logged once per outage), never buffered without bound.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { OutputMessage } from '../shared/protocol.js';

/** What watchers receive on `keys.outputChannel(id)` and find in `keys.outputBuffer(id)` (JSON). */
export interface OutputRecord {
  agent: string;
  execution_id: string;
  task: string;
  step: string;
  phase: OutputMessage['phase'];
  stream: OutputMessage['stream'];
  line: string;
  /** Epoch ms the gateway received the line. */
  at: number;
}

export interface OutputPublisherOptions {
  redis: Redis;
  keys: Keys;
  logger: Logger;
  /** Replay list length per execution. */
  bufferLines: number;
  bufferTtlMs: number;
  maxPending: number;
}

export class OutputPublisher {
  private pending: OutputRecord[] = [];
  private scheduled = false;
  private dropped = 0;
  private failing = false;

  constructor(private readonly opts: OutputPublisherOptions) {}

  push(agent: string, m: OutputMessage): void {
    if (this.pending.length >= this.opts.maxPending) {
      if (this.dropped++ === 0) this.opts.logger.warn('output backlog full; dropping live output lines');
      return;
    }
    this.pending.push({
      agent,
      execution_id: m.execution_id,
      task: m.task,
      step: m.step,
      phase: m.phase,
      stream: m.stream,
      line: m.line,
      at: Date.now(),
    });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const { redis, keys, bufferLines, bufferTtlMs } = this.opts;
    const pipe = redis.pipeline();
    const executions = new Set<string>();
    for (const r of batch) {
      const json = JSON.stringify(r);
      pipe.publish(keys.outputChannel(r.execution_id), json);
      pipe.rpush(keys.outputBuffer(r.execution_id), json);
      executions.add(r.execution_id);
    }
    for (const id of executions) {
      pipe.ltrim(keys.outputBuffer(id), -bufferLines, -1);
      pipe.pexpire(keys.outputBuffer(id), bufferTtlMs);
    }
    try {
      const replies = await pipe.exec();
      const err = replies?.find(([e]) => e)?.[0];
      if (err) throw err;
      if (this.failing || this.dropped > 0) {
        this.opts.logger.info({ dropped: this.dropped }, 'output publishing recovered');
        this.failing = false;
        this.dropped = 0;
      }
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.opts.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'output publish failed',
        );
      }
    } finally {
      this.scheduled = false;
      if (this.pending.length > 0) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    }
  }
}
