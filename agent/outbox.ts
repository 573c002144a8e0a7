/**
 * Results waiting for the gateway's `result_ack`. Every check, step and task result goes in here
 * before it is sent and stays until acknowledged; after a reconnect (to any gateway) everything
 * still here is re-sent in the order it was produced. The gateway acks only after the result is
 * enqueued, so a result is lost only if this agent process dies — results belong to the agent
 * process, not to disk (see docs/agent.md).
 *
 * Bounded: past `capacity` the oldest entry is dropped with a warning, so an agent cut off from
 * every gateway for a long time keeps the newest results rather than running out of memory.
 */
import type { Logger } from '../shared/logger.js';
import type { AgentResult } from '../shared/protocol.js';

export class Outbox {
  // A Map keeps insertion order and gives O(1) removal by id. `sentAt`: when the result was last
  // handed to the socket (epoch ms).
  private readonly entries = new Map<string, { result: AgentResult; sentAt: number }>();
  private dropped = 0;

  constructor(
    private readonly logger: Logger,
    private readonly capacity = 10_000,
  ) {
    if (capacity < 1) throw new Error('Outbox capacity must be at least 1');
  }

  add(result: AgentResult, now = Date.now()): void {
    this.entries.set(result.result_id, { result, sentAt: now });
    if (this.entries.size <= this.capacity) return;
    const oldest = this.entries.keys().next();
    if (oldest.done) return;
    const victim = this.entries.get(oldest.value)?.result;
    this.entries.delete(oldest.value);
    this.dropped++;
    this.logger.warn(
      {
        result_id: oldest.value,
        type: victim?.type,
        execution_id: victim?.execution_id,
        dropped_total: this.dropped,
      },
      'outbox full: dropped the oldest unacknowledged result',
    );
  }

  /** Forget acknowledged results; unknown ids (already acked, or a late duplicate ack) are ignored. */
  ack(resultIds: readonly string[]): number {
    let removed = 0;
    for (const id of resultIds) if (this.entries.delete(id)) removed++;
    return removed;
  }

  /**
   * Unacknowledged results last sent at least `olderThanMs` ago, oldest first, marked as sent now.
   * A gateway that could not enqueue a result (Redis slow or away, its backlog full) does not ack
   * it; re-sending these while connected means such a result arrives once Redis recovers, not
   * only after the next reconnect. The gateway acks a repeat it already enqueued without a job.
   */
  takeOverdue(now: number, olderThanMs: number): AgentResult[] {
    const out: AgentResult[] = [];
    for (const entry of this.entries.values()) {
      if (now - entry.sentAt < olderThanMs) continue;
      entry.sentAt = now;
      out.push(entry.result);
    }
    return out;
  }

  /** Everything counts as sent now (after a reconnect re-sent it all). */
  markAllSent(now: number): void {
    for (const entry of this.entries.values()) entry.sentAt = now;
  }

  /** Unacknowledged results, oldest first. */
  pending(): AgentResult[] {
    return [...this.entries.values()].map((e) => e.result);
  }

  get size(): number {
    return this.entries.size;
  }

  get droppedTotal(): number {
    return this.dropped;
  }
}
