import type { EventEmitter } from 'node:events';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { RegisterRefusalCode } from '../shared/protocol.js';

/** What a gateway reports to whoever watches it (metrics, tests). Names are `noun:verb`. */
export interface GatewayEventMap {
  'agent:registered': [{ agent: string; session_id: string; replaced: string | null }];
  'agent:refused': [
    { agent: string | null; code: number; reason: string; refusal?: RegisterRefusalCode | undefined },
  ];
  'agent:closed': [{ agent: string | null; session_id: string | null; code: number; reason: string }];
  'registry:rebuilt': [{ agent: string }];
  /** Messages dropped before Redis: not issued to the sending agent, or output not live / too fast. */
  'agent:dropped': [
    { agent: string; reason: 'foreign_instruction' | 'output_not_live' | 'output_rate'; count: number },
  ];
  'results:enqueued': [{ count: number }];
  'results:failed': [{ count: number; error: string }];
  /** Enqueued, but no replica confirmed them in time (replica_ack_timeout): not acked, re-sent. */
  'results:unreplicated': [{ count: number }];
  /** A full backlog refused results (`count`, named in a `result_retry`) and receipts (lost). */
  'results:refused': [{ count: number; receipts: number; retry_after_ms: number }];
  'instruction:delivered': [{ agent: string; instruction_id: string }];
  'instruction:undeliverable': [{ agent: string; instruction_id: string; reason: string }];
}

export type GatewayEvents = EventEmitter<GatewayEventMap>;

/** Emit so that a throwing listener is logged and can never break the socket path that emitted. */
export function safeEmit<K extends keyof GatewayEventMap>(
  events: GatewayEvents,
  logger: Logger,
  name: K,
  ...args: GatewayEventMap[K]
): void {
  try {
    // The generic overloads of EventEmitter<T> cannot follow K here; the map above is the contract.
    (events.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args);
  } catch (err) {
    logger.error({ err: errorMessage(err), event: name }, 'gateway event listener threw');
  }
}
