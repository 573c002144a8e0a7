/**
 * One viewer of one execution's live output, as server-sent events: subscribe first, then read
 * the replay list, send the replay, then live messages minus those the replay already held, until
 * the end record (or the client leaves). Lines are told apart by their whole JSON (which carries
 * the gateway's receive time), so identical output lines are still all delivered.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.js';
import { isEndRecord, parseStreamRecord } from '../shared/output-record.js';
import type { StreamSink } from './router.js';

export interface ExecutionStreamDeps {
  subscribe(channel: string, listener: (message: string) => void): Promise<() => void>;
  channelOf(executionId: string): string;
  /** The replay list, oldest first. */
  readRecords(executionId: string): Promise<string[]>;
  /**
   * Has the execution ended without its end record reaching us (never ran, end lost, expired)?
   * Asked once the replay is sent and then every `endCheckMs`; `null` means it has not. Silent
   * executions get no end record at all (output-publisher.ts), so this is how their viewers stop.
   */
  ended(executionId: string): Promise<{ outcome: string | null } | null>;
  pingMs: number;
  /** How often to ask `ended` while the stream is open (default 1 s). */
  endCheckMs?: number;
  /** A subscription not confirmed within this fails the request (Redis away). */
  subscribeTimeoutMs: number;
  logger: Logger;
}

/** Live messages held between the subscription and the client's attachment. */
const MAX_EARLY = 10_000;

/**
 * A multiset of the replayed records: a live message equal to one still in it was replayed
 * already. Records published before our SUBSCRIBE are in the replay but never arrive live, so
 * their entries linger; a later record equal to one of them would need the same receive
 * millisecond, step, stream and text.
 */
export class ReplayFilter {
  private readonly counts = new Map<string, number>();

  constructor(replayed: readonly string[]) {
    for (const r of replayed) this.counts.set(r, (this.counts.get(r) ?? 0) + 1);
  }

  /** True (and forgets one copy) when this live message was part of the replay. */
  seen(message: string): boolean {
    const n = this.counts.get(message);
    if (!n) return false;
    if (n === 1) this.counts.delete(message);
    else this.counts.set(message, n - 1);
    return true;
  }
}

export function sseEvent(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

function timeout<T>(promise: Promise<T>, ms: number, onLate: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  return Promise.race([
    promise.then((value) => {
      if (late) onLate(value);
      return value;
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(new Error(`output subscription not confirmed within ${ms}ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Subscribes and reads the replay (so failures still answer as JSON errors), then returns the
 * function that serves the stream to the client's sink.
 */
export async function openExecutionStream(
  id: string,
  deps: ExecutionStreamDeps,
): Promise<(sink: StreamSink) => void> {
  const early: string[] = [];
  let deliver: ((message: string) => void) | null = null;
  const unsubscribe = await timeout(
    deps.subscribe(deps.channelOf(id), (message) => {
      if (deliver) deliver(message);
      else if (early.length < MAX_EARLY) early.push(message);
    }),
    deps.subscribeTimeoutMs,
    (lateUnsubscribe) => lateUnsubscribe(),
  );
  let replay: string[];
  try {
    replay = await deps.readRecords(id);
  } catch (err) {
    unsubscribe();
    throw err;
  }

  return (sink) => {
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    let checker: NodeJS.Timeout | undefined;
    const cleanup = () => {
      if (closed) return;
      closed = true;
      deliver = null;
      unsubscribe();
      clearInterval(timer);
      clearInterval(checker);
    };
    sink.onClose(cleanup);
    if (closed) return;
    const finish = (outcome: string | null) => {
      if (closed) return;
      sink.send(sseEvent('end', JSON.stringify({ execution_id: id, outcome })));
      sink.end();
      cleanup();
    };
    const filter = new ReplayFilter(replay);
    /** Returns true once the stream is over. */
    const handle = (text: string, live: boolean): boolean => {
      if (closed) return true;
      if (live && filter.seen(text)) return false;
      const record = parseStreamRecord(text);
      if (!record) return false;
      if (isEndRecord(record)) {
        finish(record.outcome);
        return true;
      }
      sink.send(sseEvent('output', text));
      return false;
    };
    sink.send(`: output of execution ${id}\n\n`);
    for (const text of replay) if (handle(text, false)) return;
    for (const text of early.splice(0)) if (handle(text, true)) return;
    deliver = (text) => void handle(text, true);
    const checkEnded = () => {
      if (closed) return;
      deps.ended(id).then(
        (ended) => {
          if (ended) finish(ended.outcome);
        },
        (err: unknown) => {
          deps.logger.debug({ err: errorMessage(err), execution_id: id }, 'execution end check failed');
        },
      );
    };
    timer = setInterval(() => {
      if (!closed) sink.send(': ping\n\n');
    }, deps.pingMs);
    checker = setInterval(checkEnded, deps.endCheckMs ?? 1000);
    checkEnded();
  };
}
