/**
 * The records of an execution's live output, as the gateway publishes them on
 * `keys.outputChannel(id)` and keeps in `keys.outputBuffer(id)` (JSON), and as the HTTP API hands
 * them out (`GET /api/v1/executions/{id}` and its stream). Types only: the store writes them
 * (store/output/output-publisher.ts), the console and the CLI read them.
 */
import type { OutputMessage } from './protocol.js';

export interface OutputRecord {
  agent: string;
  execution_id: string;
  task: string;
  step: string;
  phase: OutputMessage['phase'];
  stream: OutputMessage['stream'];
  line: string;
  /** Epoch ms the gateway received the line. */
  at: number;
}

/**
 * The last record of an execution on its channel and in its replay list: the gateway writes it
 * when the final result arrives, the reconciler when the execution times out.
 */
export interface EndRecord {
  kind: 'end';
  agent: string;
  execution_id: string;
  task: string;
  /** The task outcome the agent reported, or `timeout`. */
  outcome: string;
  at: number;
}

export type StreamRecord = OutputRecord | EndRecord;

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
