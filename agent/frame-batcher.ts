/**
 * Coalesces encoded receipts and results into `results` frames: what is queued within one short
 * window leaves together, early once the batch reaches `maxItems` items or `maxBytes` bytes of
 * encoded JSON. A batch of one leaves as the plain message (no wrapper). No I/O: the caller gives
 * the timer and writes the frames; dropping a batch (`clear`) loses nothing the outbox still holds.
 */
import { MAX_RESULTS_PER_FRAME } from '../shared/protocol.js';

export interface FrameBatcherOptions {
  /** How long the first queued item waits for company. */
  windowMs: number;
  /** Flush at this many items (capped at MAX_RESULTS_PER_FRAME). */
  maxItems: number;
  /** Flush at this many bytes of encoded items; an item that would pass it starts the next batch. */
  maxBytes: number;
  /** Writes one frame (a plain message or a `results` batch). */
  write(frame: string): void;
  setTimer?(fn: () => void, ms: number): unknown;
  clearTimer?(handle: unknown): void;
}

/** A `results` frame around items that are already encoded messages. */
export function resultsFrame(encodedItems: readonly string[]): string {
  return `{"type":"results","messages":[${encodedItems.join(',')}]}`;
}

export class FrameBatcher {
  private parts: string[] = [];
  private bytes = 0;
  private timer: unknown = null;
  private readonly maxItems: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly opts: FrameBatcherOptions) {
    this.maxItems = Math.max(1, Math.min(opts.maxItems, MAX_RESULTS_PER_FRAME));
    this.setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return t;
      });
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  }

  /** Items waiting for the next frame. */
  get size(): number {
    return this.parts.length;
  }

  /** Queue one encoded message (a receipt or a result). */
  add(encoded: string): void {
    // +1: the comma between items. Byte length, not string length: output tails may be multibyte.
    const size = Buffer.byteLength(encoded) + 1;
    if (this.parts.length > 0 && this.bytes + size > this.opts.maxBytes) this.flush();
    this.parts.push(encoded);
    this.bytes += size;
    const full = this.parts.length >= this.maxItems || this.bytes >= this.opts.maxBytes;
    if (full || this.opts.windowMs <= 0) this.flush();
    else if (this.timer === null) {
      this.timer = this.setTimer(() => {
        this.timer = null;
        this.flush();
      }, this.opts.windowMs);
    }
  }

  /** Write what is queued now. */
  flush(): void {
    this.cancelTimer();
    if (this.parts.length === 0) return;
    const parts = this.parts;
    this.parts = [];
    this.bytes = 0;
    this.opts.write(parts.length === 1 ? parts[0]! : resultsFrame(parts));
  }

  /** Drop what is queued (the socket it was meant for is gone). */
  clear(): void {
    this.cancelTimer();
    this.parts = [];
    this.bytes = 0;
  }

  private cancelTimer(): void {
    if (this.timer === null) return;
    this.clearTimer(this.timer);
    this.timer = null;
  }
}
