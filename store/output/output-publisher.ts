/**
 * Live output lines → Redis, not BullMQ: PUBLISH on the execution's channel for live watchers and
 * RPUSH onto a capped replay list for late ones. Lines of one event-loop turn share one pipeline.
 * Output is best effort by protocol: while Redis is away, lines beyond `maxPending` are dropped and
 * counted (logged once per outage), never buffered without bound.
 *
 * When the final result of an execution that produced output through this gateway arrives, an
 * end record follows its last line on the same channel and list, so a watcher knows when to stop,
 * whether it watched live or replays later. It travels through the same queue as the lines, so it
 * can never overtake them. Silent executions (most drift checks) get no end record: writing one
 * would cost four Redis commands per task per cycle across the fleet, for viewers that rarely
 * exist; a viewer learns that a silent execution ended by asking the stores (execution-stream.ts).
 */
import type { ChainableCommander } from 'ioredis';
import { errorMessage } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import type { OutputMessage } from '../../shared/protocol.js';
import type { RedisClient } from '../redis/client.js';
import { canPipeline, pipelineOf } from '../redis/pipeline.js';
import { type EndRecord, OUTPUT_BUFFER_LINES, OUTPUT_BUFFER_TTL_MS, type StreamRecord } from './output.js';

/**
 * On a Cluster a keyless PUBLISH goes to any node, and two nodes' messages may reach a subscriber
 * out of order: there each record is published by a script on its replay list's slot, so one
 * execution's lines all leave from one node, in order.
 */
const PUBLISH_AND_PUSH =
  "redis.call('PUBLISH', ARGV[1], ARGV[2]) return redis.call('RPUSH', KEYS[1], ARGV[2])";

/**
 * Queues PUBLISH + RPUSH of each record, then one trim and expiry per execution touched. Shared
 * with the reconciler's timeout path so both write the same keys the same way. `cluster`: the
 * pipeline goes to a Redis Cluster (see PUBLISH_AND_PUSH).
 */
export function appendStreamRecords(
  pipe: ChainableCommander,
  keys: Keys,
  records: readonly StreamRecord[],
  bounds: { lines: number; ttlMs: number },
  cluster = false,
): void {
  const executions = new Set<string>();
  for (const r of records) {
    const json = JSON.stringify(r);
    const channel = keys.outputChannel(r.execution_id);
    const buffer = keys.outputBuffer(r.execution_id);
    if (cluster) pipe.eval(PUBLISH_AND_PUSH, 1, buffer, channel, json);
    else pipe.publish(channel, json).rpush(buffer, json);
    executions.add(r.execution_id);
  }
  for (const id of executions) {
    pipe.ltrim(keys.outputBuffer(id), -bounds.lines, -1);
    pipe.pexpire(keys.outputBuffer(id), bounds.ttlMs);
  }
}

/** Publishes end records now (the reconciler's timeout path); throws if Redis refuses. */
export async function publishEndRecords(
  redis: RedisClient,
  keys: Keys,
  ends: ReadonlyArray<Omit<EndRecord, 'kind' | 'at'>>,
  bounds = { lines: OUTPUT_BUFFER_LINES, ttlMs: OUTPUT_BUFFER_TTL_MS },
): Promise<void> {
  if (ends.length === 0) return;
  const at = Date.now();
  const pipe = pipelineOf(redis);
  appendStreamRecords(
    pipe,
    keys,
    ends.map((e) => ({ kind: 'end' as const, ...e, at })),
    bounds,
    !canPipeline(redis),
  );
  const replies = await pipe.exec();
  const err = replies?.find(([e]) => e)?.[0];
  if (err) throw err;
}

/** Executions with output remembered per gateway (bounded, oldest forgotten first). */
const RECENT_EXECUTIONS = 10_000;

export interface OutputPublisherOptions {
  redis: RedisClient;
  keys: Keys;
  logger: Logger;
  /** Replay list length per execution. */
  bufferLines: number;
  bufferTtlMs: number;
  maxPending: number;
}

export class OutputPublisher {
  private pending: StreamRecord[] = [];
  /** Executions whose lines went out here and whose end record has not. */
  private readonly withOutput = new Set<string>();
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
    if (!this.withOutput.has(m.execution_id)) {
      this.withOutput.add(m.execution_id);
      if (this.withOutput.size > RECENT_EXECUTIONS) {
        const oldest = this.withOutput.values().next().value;
        if (oldest !== undefined) this.withOutput.delete(oldest);
      }
    }
    this.schedule();
  }

  /**
   * The execution's final result arrived: queue its end record behind its lines, if it had any
   * here (once: a result the agent re-sends does not end it twice). Not subject to `maxPending`:
   * one per result, and results are bounded by the forwarder.
   */
  end(agent: string, m: { execution_id: string; task: string; outcome: string }): void {
    if (!this.withOutput.delete(m.execution_id)) return;
    this.pending.push({
      kind: 'end',
      agent,
      execution_id: m.execution_id,
      task: m.task,
      outcome: m.outcome,
      at: Date.now(),
    });
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const { redis, keys, bufferLines, bufferTtlMs } = this.opts;
    const pipe = pipelineOf(redis);
    appendStreamRecords(pipe, keys, batch, { lines: bufferLines, ttlMs: bufferTtlMs }, !canPipeline(redis));
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
        this.opts.logger.warn({ err: errorMessage(err) }, 'output publish failed');
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
