/**
 * What an AgentConnection is told: where the gateway is, how to present itself, what to do with
 * what arrives, and the tuning knobs (backoff, timeouts, batching) with their defaults.
 */
import type { Logger } from '../shared/logger.js';
import type {
  CancelMessage,
  HeartbeatMessage,
  RegisteredMessage,
  RegisterMessage,
  ResultAckMessage,
  ResultRetryMessage,
  RunMessage,
} from '../shared/protocol.js';

/** How receipts and results are gathered into `results` frames unless the options say otherwise. */
export const BATCH_DEFAULTS = { windowMs: 10, maxItems: 500, maxBytes: 256 * 1024 } as const;

export type RegisteredPhaseMessage = RunMessage | ResultAckMessage | ResultRetryMessage | CancelMessage;

export interface ConnectionOptions {
  /** `ws://host:port` or `wss://host:port`; `/agent` is appended. */
  serverUrl: string;
  /** The bootstrap token: presented when there is no credential (enrollment, legacy). */
  token: string;
  /** The agent's own credential, presented instead of `token` while it has one. */
  credential?: { bearer(): string | null; rejected(): void };
  /** PEM CA bundle replacing the system store (self-signed gateways). */
  ca?: string | Buffer;
  insecureSkipVerify?: boolean;
  logger: Logger;
  buildRegister(): RegisterMessage;
  buildHeartbeat(): HeartbeatMessage;
  onRegistered(info: RegisteredMessage): void;
  onMessage(message: RegisteredPhaseMessage): void;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** How long the gateway may take to answer `register`. */
  registerTimeoutMs?: number;
  /** Largest frame accepted from the gateway. */
  maxPayloadBytes?: number;
  /** Above this many buffered bytes, live output is dropped (results are never dropped: they wait in the outbox). */
  outputHighWaterBytes?: number;
  random?: () => number;
  /** Receipts and results queued within this window leave in one `results` frame (default 10 ms; 0: at once). */
  batchWindowMs?: number;
  /** A batch leaves early at this many messages (default 500; at most 1000). */
  batchMaxItems?: number;
  /** ...or at this many bytes of encoded JSON (default 256 KiB). */
  batchMaxBytes?: number;
}
