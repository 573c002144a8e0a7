/**
 * The live output port: what agents print while a task runs, for watchers now and later.
 *
 * Glossary: an execution's *records* are its output lines and, last, its *end record*; each is
 * *published* to the execution's live watchers and appended to its *replay list* (bounded in
 * lines and time), so a late watcher reads what it missed and then follows live.
 */
// The record format is declared in shared/ because the HTTP API hands it out and the console
// parses it.
import type { EndRecord, OutputRecord, StreamRecord } from '../../shared/output-record.js';

export type { EndRecord, OutputRecord, StreamRecord };

/** The replay list's bounds when nothing else is configured (the gateway's defaults). */
export const OUTPUT_BUFFER_LINES = 1000;
export const OUTPUT_BUFFER_TTL_MS = 3600_000;

export interface OutputLog {
  /** Publishes each record to its execution's watchers and appends it to its replay list. */
  append(records: readonly StreamRecord[]): Promise<void>;
  /** The replay list as written (JSON texts), oldest first; only the newest with `lastOnly`. */
  replay(executionId: string, lastOnly?: boolean): Promise<string[]>;
  /** Resolves once the execution's records reach `listener`, with the function that stops them. */
  subscribe(executionId: string, listener: (text: string) => void): Promise<() => void>;
}
