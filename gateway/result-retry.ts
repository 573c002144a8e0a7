/**
 * What the gateway tells an agent whose results its full backlog refused: `result_retry`, naming
 * the refused result ids and when to come back. Pure decisions, plus a warning logged at most once
 * per interval (a burst refuses thousands of frames; one log line each would be a second burst).
 */
import type { Logger } from '../shared/logger.js';
import type { ResultsItem } from '../shared/protocol.js';

/** Enqueues succeed and a burst filled the backlog: it drains within about a second. */
export const RETRY_AFTER_BUSY_MS = 1000;
/** Enqueues are failing (Redis down, or slower than the enqueue timeout): come back much later. */
export const RETRY_AFTER_FAILING_MS = 10_000;
/** The refusal warning is logged at most this often, with the counts since the last one. */
export const REFUSAL_LOG_INTERVAL_MS = 5000;

/** How long an agent should wait before re-sending refused results. */
export function retryAfterMs(enqueueFailing: boolean): number {
  return enqueueFailing ? RETRY_AFTER_FAILING_MS : RETRY_AFTER_BUSY_MS;
}

/**
 * The result ids among the messages `pushAll` refused (all after the first `taken`). Receipts
 * carry no result id and are skipped: a refused receipt is covered by the reconciler's deadline.
 */
export function refusedResultIds(messages: readonly ResultsItem[], taken: number): string[] {
  const ids: string[] = [];
  for (let i = Math.max(0, taken); i < messages.length; i++) {
    const m = messages[i]!;
    if (m.type !== 'instruction_receipt') ids.push(m.result_id);
  }
  return ids;
}

/**
 * Warns about refusals: at once for the first, then at most once per interval with what was
 * refused since, and silent again after an interval without refusals.
 */
export class RefusalLog {
  private results = 0;
  private receipts = 0;
  private lastRetryAfterMs = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
  ) {}

  refused(results: number, receipts: number, retryAfter: number): void {
    this.results += results;
    this.receipts += receipts;
    this.lastRetryAfterMs = retryAfter;
    if (this.timer) return;
    this.write();
    this.arm();
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.results + this.receipts === 0) return;
      this.write();
      this.arm();
    }, this.intervalMs);
    this.timer.unref();
  }

  private write(): void {
    this.logger.warn(
      { count: this.results, receipts: this.receipts, retry_after_ms: this.lastRetryAfterMs },
      'results backlog full: refused results, agents told to retry',
    );
    this.results = 0;
    this.receipts = 0;
  }
}
