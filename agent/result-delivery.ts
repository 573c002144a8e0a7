/**
 * Getting results acknowledged: what the outbox holds is sent again when it comes due (no ack in
 * `resendAfterMs`, or a `result_retry` delay has passed), all of it on every registration, and
 * shutdown can wait a moment for the last acks.
 */
import type { Logger } from '../shared/logger.js';
import type { AgentConnection } from './connection.js';
import { type Outbox, retryDelayMs } from './outbox.js';

export interface ResultDeliveryOptions {
  outbox: Outbox;
  /** The connection, built after this (its callbacks call in here). */
  connection: () => AgentConnection;
  logger: Logger;
  resendAfterMs: number;
  random: () => number;
}

export class ResultDelivery {
  private resendTimer: NodeJS.Timeout | null = null;
  // One one-shot timer for the earliest `result_retry` due time, re-armed for the next one.
  private retryTimer: NodeJS.Timeout | null = null;
  private retryTimerAt = Number.POSITIVE_INFINITY;
  private readonly ackWaiters = new Set<() => void>();

  constructor(private readonly o: ResultDeliveryOptions) {}

  /** Starts the periodic re-send of what the gateway has not acknowledged. */
  start(): void {
    this.resendTimer = setInterval(
      () => this.resendDue('re-sending results the gateway has not acknowledged'),
      Math.max(100, Math.floor(this.o.resendAfterMs / 3)),
    );
    this.resendTimer.unref();
  }

  stop(): void {
    if (this.resendTimer) clearInterval(this.resendTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryTimerAt = Number.POSITIVE_INFINITY;
  }

  /** On registration everything not acknowledged goes again, oldest first; the gateway dedupes by result_id. */
  resendAll(): void {
    const { outbox, logger } = this.o;
    const connection = this.o.connection();
    const pending = outbox.pending();
    if (pending.length > 0) logger.info({ count: pending.length }, 're-sending unacknowledged results');
    for (const r of pending) connection.send(r);
    connection.flush();
    outbox.markAllSent(Date.now());
  }

  acked(resultIds: readonly string[]): void {
    this.o.outbox.ack(resultIds);
    if (this.o.outbox.size === 0) for (const w of this.ackWaiters) w();
  }

  /** The gateway's backlog is full: come back after its delay (jittered, at most resendAfterMs). */
  retryLater(resultIds: readonly string[], retryAfterMs: number): void {
    const delay = retryDelayMs(retryAfterMs, this.o.resendAfterMs, this.o.random);
    const found = this.o.outbox.retryAt(resultIds, Date.now() + delay);
    if (found === 0) return;
    this.o.logger.debug({ count: found, delay_ms: delay }, 'gateway busy: results will be re-sent');
    this.armRetry();
  }

  /** Resolves once the outbox is empty or after `timeoutMs`, whichever is first. */
  waitForAcks(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.ackWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.ackWaiters.add(done);
    });
  }

  /** Re-sends what has come due (overdue, or asked for by a `result_retry`) as one batch. */
  private resendDue(why: string): void {
    const connection = this.o.connection();
    if (!connection.isRegistered) return;
    const due = this.o.outbox.takeOverdue(Date.now(), this.o.resendAfterMs);
    if (due.length === 0) return;
    this.o.logger.info({ count: due.length }, why);
    for (const r of due) connection.send(r);
    connection.flush();
  }

  private armRetry(): void {
    const at = this.o.outbox.nextDueAt();
    if (at === null || at >= this.retryTimerAt) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimerAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        this.retryTimerAt = Number.POSITIVE_INFINITY;
        // Not registered: the next registration re-sends everything and clears the due times.
        if (!this.o.connection().isRegistered) return;
        this.resendDue('re-sending results the gateway asked to retry');
        this.armRetry();
      },
      Math.max(0, at - Date.now()),
    );
    this.retryTimer.unref();
  }
}
