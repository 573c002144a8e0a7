/**
 * Bull Board's view of the queues: its BullMQ adapter needs the Queue objects themselves, so it is
 * built here and the console gets opaque board adapters.
 */
import type { BaseAdapter } from '@bull-board/api/baseAdapter';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { JobQueueHandle } from './queues.js';

export type BoardQueue = BaseAdapter;

export function boardQueues(queues: readonly JobQueueHandle[], readOnlyMode: boolean): BoardQueue[] {
  return queues.map((q) => new BullMQAdapter(q, { readOnlyMode }));
}
