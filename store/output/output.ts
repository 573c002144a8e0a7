/**
 * The live output port: what agents print while a task runs, for watchers now and later.
 *
 * Glossary: an execution's *records* are its output lines and, last, its *end record*; each is
 * *published* to the execution's live watchers and appended to its *replay list* (bounded in
 * lines and time), so a late watcher reads what it missed and then follows live.
 */
// The record types are declared in shared/ because the HTTP API hands them out.
import type { EndRecord, OutputRecord, StreamRecord } from '../../shared/output-record.js';

export type { EndRecord, OutputRecord, StreamRecord };

/** The replay list's bounds when nothing else is configured (the gateway's defaults). */
export const OUTPUT_BUFFER_LINES = 1000;
export const OUTPUT_BUFFER_TTL_MS = 3600_000;

export function isEndRecord(record: StreamRecord): record is EndRecord {
  return (record as Partial<EndRecord>).kind === 'end';
}

/** Parses one channel message or list entry; null for anything that is not a record. */
export function parseStreamRecord(text: string): StreamRecord | null {
  try {
    const value = JSON.parse(text) as Partial<StreamRecord> | null;
    if (!value || typeof value !== 'object' || typeof value.execution_id !== 'string') return null;
    return value as StreamRecord;
  } catch {
    return null;
  }
}

export interface OutputLog {
  /** Publishes each record to its execution's watchers and appends it to its replay list. */
  append(records: readonly StreamRecord[]): Promise<void>;
  /** The replay list as written (JSON texts), oldest first; only the newest with `lastOnly`. */
  replay(executionId: string, lastOnly?: boolean): Promise<string[]>;
  /** Resolves once the execution's records reach `listener`, with the function that stops them. */
  subscribe(executionId: string, listener: (text: string) => void): Promise<() => void>;
}
