/**
 * The live output in Redis: PUBLISH on the execution's channel, RPUSH onto its capped replay list
 * (appendStreamRecords, which the gateway's batching publisher shares); live watchers share one
 * subscriber connection (ChannelHub).
 */

import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';
import { canPipeline, execAll, pipelineOf } from '../redis/pipeline.js';
import type { ChannelHub } from './channel-hub.js';
import { OUTPUT_BUFFER_LINES, OUTPUT_BUFFER_TTL_MS, type OutputLog, type StreamRecord } from './output.js';
import { appendStreamRecords } from './output-publisher.js';

export interface RedisOutputLogOptions {
  redis: RedisClient;
  keys: Keys;
  /** Where live watchers subscribe (its own connection). */
  hub: ChannelHub;
  bufferLines?: number;
  bufferTtlMs?: number;
}

export class RedisOutputLog implements OutputLog {
  constructor(private readonly o: RedisOutputLogOptions) {}

  async append(records: readonly StreamRecord[]): Promise<void> {
    if (records.length === 0) return;
    const pipe = pipelineOf(this.o.redis);
    appendStreamRecords(
      pipe,
      this.o.keys,
      records,
      { lines: this.o.bufferLines ?? OUTPUT_BUFFER_LINES, ttlMs: this.o.bufferTtlMs ?? OUTPUT_BUFFER_TTL_MS },
      !canPipeline(this.o.redis),
    );
    await execAll(pipe);
  }

  replay(executionId: string, lastOnly = false): Promise<string[]> {
    return this.o.redis.lrange(this.o.keys.outputBuffer(executionId), lastOnly ? -1 : 0, -1);
  }

  subscribe(executionId: string, listener: (text: string) => void): Promise<() => void> {
    return this.o.hub.subscribe(this.o.keys.outputChannel(executionId), listener);
  }
}
