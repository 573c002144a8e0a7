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

/**
 * How long to wait before re-sending results a gateway refused (`result_retry`): its
 * `retry_after_ms` plus 0–50 % jitter, so a fleet refused together does not come back in lockstep,
 * and never longer than the agent's own re-send interval (`capMs`).
 */
export function retryDelayMs(
  retryAfterMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const jittered = retryAfterMs * (1 + 0.5 * Math.min(1, Math.max(0, random())));
  return Math.max(0, Math.round(Math.min(capMs, jittered)));
}

interface Entry {
  result: AgentResult;
  /** When the result was last handed to the socket (epoch ms). */
  sentAt: number;
  /** When the gateway asked for it again (`result_retry`), if it did since the last send. */
  dueAt: number | null;
}

export class Outbox {
  // A Map keeps insertion order and gives O(1) removal by id.
  private readonly entries = new Map<string, Entry>();
  private dropped = 0;

  constructor(
    private readonly logger: Logger,
    private readonly capacity = 10_000,
  ) {
    if (capacity < 1) throw new Error('Outbox capacity must be at least 1');
  }

  add(result: AgentResult, now = Date.now()): void {
    this.entries.set(result.result_id, { result, sentAt: now, dueAt: null });
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
   * Unacknowledged results last sent at least `olderThanMs` ago, or whose `retryAt` due time has
   * come, oldest first, marked as sent now. A gateway that could not enqueue a result (Redis slow
   * or away) does not ack it; re-sending these while connected means such a result arrives once
   * Redis recovers, not only after the next reconnect. The gateway acks a repeat it already
   * enqueued without a job.
   */
  takeOverdue(now: number, olderThanMs: number): AgentResult[] {
    const out: AgentResult[] = [];
    for (const entry of this.entries.values()) {
      const due = entry.dueAt !== null && now >= entry.dueAt;
      if (!due && now - entry.sentAt < olderThanMs) continue;
      entry.sentAt = now;
      entry.dueAt = null;
      out.push(entry.result);
    }
    return out;
  }

  /**
   * A gateway refused these results for now (`result_retry`): those still here become due at
   * `dueAt` (takeOverdue hands them out from then on). Ids no longer here (acknowledged meanwhile)
   * are ignored. Returns how many were found.
   */
  retryAt(resultIds: readonly string[], dueAt: number): number {
    let found = 0;
    for (const id of resultIds) {
      const entry = this.entries.get(id);
      if (!entry) continue;
      entry.dueAt = dueAt;
      found++;
    }
    return found;
  }

  /** The earliest `retryAt` due time still pending, or null. */
  nextDueAt(): number | null {
    let next: number | null = null;
    for (const entry of this.entries.values()) {
      if (entry.dueAt !== null && (next === null || entry.dueAt < next)) next = entry.dueAt;
    }
    return next;
  }

  /** Everything counts as sent now (after a reconnect re-sent it all); no retry is pending. */
  markAllSent(now: number): void {
    for (const entry of this.entries.values()) {
      entry.sentAt = now;
      entry.dueAt = null;
    }
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
