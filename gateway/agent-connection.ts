/**
 * Per-socket state, stored as the uWS user data. Kept small on purpose: one of these exists per
 * connected agent, and the scale target is ≤ 3 KB of gateway RSS per agent, sockets included.
 */
import type { AgentAuth, TokenGrant } from '../shared/auth.js';
import type { Logger } from '../shared/logger.js';
import { encode, type GatewayMessage } from '../shared/protocol.js';
import type { RegistryEntry } from '../shared/registry-entry.js';
import type { SocketData } from './agent-endpoint.js';
import type { ResultSource } from './result-forwarder.js';
import { SEND_DROPPED, type WebSocket } from './uws.js';

/**
 * new → registering (register received, registry write in flight) → registered → closed.
 * Any state may go straight to closed.
 */
export type Phase = 'new' | 'registering' | 'registered' | 'closed';

/** Close reasons travel in a control frame: at most 123 bytes. */
export function closeReason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= 123 ? text : `${bytes.subarray(0, 120).toString('utf8')}...`;
}

export class AgentConnection implements ResultSource {
  phase: Phase = 'new';
  entry: RegistryEntry | null = null;
  lastHeartbeat = 0;
  /** Messages that arrived while the registry write was in flight, replayed once registered. */
  backlog: string[] | null = null;
  /** The agent advertised `result_retry` in `register` (older agents would close on it). */
  takesRetry = false;
  /** Executions of runs sent on this socket and not yet finished (gateway/result-guard.ts); lazy. */
  /** The last instruction id whose tag the result guard checked for this agent (gateway/result-guard.ts). */
  verifiedInstruction: string | null = null;
  liveExecutions: Set<string> | null = null;
  /** The output byte rate's token bucket: bytes left, and when it was last refilled (0: never). */
  outputTokens = 0;
  outputAt = 0;
  private ws: WebSocket<SocketData> | null = null;
  /** Set when the gateway itself ended the socket, so the close handler logs the real reason. */
  closeCause: { code: number; reason: string } | null = null;
  /** The identity its enrollment record names (set once the name is claimed); null before. */
  identity: string | null = null;
  /** When the enrollment record was last claimed or renewed (ms). */
  claimedAt = 0;

  constructor(
    readonly id: number,
    /** What authenticated the socket: a bootstrap token's grant, or a credential and its claims. */
    readonly auth: AgentAuth,
    readonly remote: string,
    readonly openedAt: number,
    private readonly root: Logger,
    /** Called when a send was dropped at the backpressure limit (the socket is then closed). */
    private readonly onSlow: (conn: AgentConnection) => void,
    /** Counts what went out (metrics); shared by every connection of a gateway. */
    private readonly onSent?: (type: GatewayMessage['type']) => void,
  ) {}

  /** The grant as configured now (for a credential: the grant it names). */
  get grant(): TokenGrant {
    return this.auth.grant;
  }

  get agent(): string {
    return this.entry?.name ?? '';
  }
  get sessionId(): string {
    return this.entry?.session_id ?? '';
  }

  attach(ws: WebSocket<SocketData>): void {
    this.ws = ws;
  }

  /** The socket is gone (uWS close handler ran); never touch the uWS object again. */
  detach(): void {
    this.ws = null;
    this.phase = 'closed';
  }

  log(): Logger {
    return this.root.child({ conn: this.id, agent: this.entry?.name, session: this.entry?.session_id });
  }

  /**
   * Send or disconnect: a frame uWS drops at the backpressure limit closes the socket, so a frozen
   * agent is never silently skipped. False when the message did not go out.
   */
  send(message: GatewayMessage): boolean {
    return this.sendText(encode(message), message.type);
  }

  /** `send` for a message already encoded by its publisher (instructions from the inbox stream). */
  sendText(text: string, type: GatewayMessage['type']): boolean {
    const ws = this.ws;
    if (!ws || this.phase === 'closed') return false;
    if (ws.send(text, false) === SEND_DROPPED) {
      this.onSlow(this);
      return false;
    }
    this.onSent?.(type);
    return true;
  }

  ack(resultIds: string[]): void {
    if (resultIds.length > 0) this.send({ type: 'result_ack', result_ids: resultIds });
  }

  bufferedAmount(): number {
    return this.ws?.getBufferedAmount() ?? 0;
  }

  /** Close with a code; uWS runs the close handler synchronously. */
  end(code: number, reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.closeCause = { code, reason };
    ws.end(code, closeReason(reason));
  }
}
