/**
 * The agent's one WebSocket to a gateway, kept up for as long as the agent runs: connect to
 * `<server_url>/agent` with the token as a Bearer header, register, heartbeat, and reconnect with
 * capped exponential backoff and full jitter whenever the socket goes away. Knows nothing about
 * running steps: it hands registered-phase messages to `onMessage`.
 */
import { type RawData, WebSocket } from 'ws';
import { coerceError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import {
  CloseCode,
  encode,
  type OutputMessage,
  parseGatewayMessage,
  type ResultsItem,
} from '../shared/protocol.js';
import { assertNever } from '../shared/types.js';
import { BATCH_DEFAULTS, type ConnectionOptions } from './connection-options.js';
import { keepHeartbeat, reconnectDelay } from './connection-timing.js';
import { FrameBatcher } from './frame-batcher.js';
import { readUpgradeRefusal } from './upgrade-refusal.js';

export { BATCH_DEFAULTS, type ConnectionOptions, type RegisteredPhaseMessage } from './connection-options.js';

type Phase = 'idle' | 'connecting' | 'registering' | 'registered' | 'stopped';

export class AgentConnection {
  private ws: WebSocket | null = null;
  private phase: Phase = 'idle';
  private attempt = 0;
  private refused = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private registerTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  private droppedOutput = 0;
  private stopWaiters: Array<() => void> = [];
  private started = false;
  /** Log an outage once, not once per reconnect attempt. */
  private outageLogged = false;
  private readonly log: Logger;
  private readonly url: string;
  /** Receipts and results for the current socket; dropped with it (the outbox keeps the results). */
  private readonly batch: FrameBatcher;

  constructor(private readonly opts: ConnectionOptions) {
    this.url = `${opts.serverUrl.replace(/\/+$/, '')}/agent`;
    this.log = opts.logger.child({ url: this.url });
    this.batch = new FrameBatcher({
      windowMs: opts.batchWindowMs ?? BATCH_DEFAULTS.windowMs,
      maxItems: opts.batchMaxItems ?? BATCH_DEFAULTS.maxItems,
      maxBytes: opts.batchMaxBytes ?? BATCH_DEFAULTS.maxBytes,
      write: (frame) => this.write(frame),
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  get isRegistered(): boolean {
    return this.phase === 'registered';
  }

  /**
   * Queues a receipt or result for the next `results` frame (see `batchWindowMs`) when registered;
   * returns false otherwise. Either way the caller keeps what must not be lost: a batch still
   * queued when the socket goes is dropped with it, and the outbox re-sends its results.
   */
  send(message: ResultsItem): boolean {
    if (!this.writable()) return false;
    this.batch.add(encode(message));
    return true;
  }

  /** Sends the queued receipts and results now rather than at the end of the window. */
  flush(): void {
    this.batch.flush();
  }

  private writable(): boolean {
    const ws = this.ws;
    return this.phase === 'registered' && ws !== null && ws.readyState === WebSocket.OPEN;
  }

  private write(text: string): boolean {
    if (!this.writable()) return false;
    this.ws?.send(text);
    return true;
  }

  /** Live output: dropped rather than queued without bound when the socket is slow. */
  sendBestEffort(message: OutputMessage): boolean {
    const ws = this.ws;
    if (ws && ws.bufferedAmount > (this.opts.outputHighWaterBytes ?? 1024 * 1024)) {
      if (this.droppedOutput++ === 0) this.log.warn('socket backed up: dropping live output until it drains');
      return false;
    }
    if (this.droppedOutput > 0 && this.phase === 'registered') {
      this.log.info({ dropped: this.droppedOutput }, 'socket drained: live output resumed');
      this.droppedOutput = 0;
    }
    // Never batched: results only ever leave later than queued, so a line still precedes the
    // task_result of its execution.
    return this.write(encode(message));
  }

  /** Close for good (no reconnect); resolves once the socket is closed. */
  stop(reason = 'agent shutting down'): Promise<void> {
    // Whatever is queued goes out before the close frame.
    this.batch.flush();
    const previous = this.phase;
    this.phase = 'stopped';
    clearTimeout(this.reconnectTimer);
    this.clearSessionTimers();
    const ws = this.ws;
    if (!ws || previous === 'stopped' || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(CloseCode.normal, reason);
      // A gateway that never answers the close frame must not hold up shutdown.
      setTimeout(() => ws.terminate(), 2000).unref();
    } else {
      ws.terminate();
    }
    return closed;
  }

  private connect(): void {
    this.phase = 'connecting';
    this.refused = false;
    const credential = this.opts.credential?.bearer() ?? null;
    const ws = new WebSocket(this.url, {
      headers: { Authorization: `Bearer ${credential ?? this.opts.token}` },
      ca: this.opts.ca,
      rejectUnauthorized: !this.opts.insecureSkipVerify,
      maxPayload: this.opts.maxPayloadBytes ?? 16 * 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: this.opts.registerTimeoutMs ?? 10_000,
    });
    this.ws = ws;
    let closedOnce = false;

    ws.on('unexpected-response', (_req, res) =>
      readUpgradeRefusal(res, (status, code) => {
        if (credential !== null && status === 401 && code === 'credential_rejected') {
          // Not a dead end: the next attempt (after the usual backoff) enrolls with the bootstrap token.
          this.opts.credential?.rejected();
        } else {
          // 401/403: the token is wrong or not allowed; hammering the gateway will not fix that.
          if (status === 401 || status === 403) this.refused = true;
          this.log.error({ status, code }, 'gateway refused the WebSocket upgrade');
        }
        ws.terminate();
      }),
    );
    ws.on('open', () => {
      if (this.phase === 'stopped') return;
      this.phase = 'registering';
      this.lastHeard = Date.now();
      ws.send(encode(this.opts.buildRegister()));
      this.registerTimer = setTimeout(() => {
        this.log.warn('no answer to register; reconnecting');
        ws.terminate();
      }, this.opts.registerTimeoutMs ?? 10_000);
    });
    ws.on('message', (data, isBinary) => this.onFrame(ws, data, isBinary));
    ws.on('pong', () => {
      this.lastHeard = Date.now();
    });
    ws.on('error', (err) => {
      if (this.outageLogged) this.log.debug({ err: coerceError(err) }, 'connection error');
      else this.log.warn({ err: coerceError(err) }, 'connection error');
    });
    ws.on('close', (code, reasonBuf) => {
      if (closedOnce) return;
      closedOnce = true;
      this.onClose(ws, code, reasonBuf.toString());
    });
  }

  private onFrame(ws: WebSocket, data: RawData, isBinary: boolean): void {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    const text = isBinary ? null : rawToString(data);
    const parsed = text === null ? { ok: false as const, error: 'binary frame' } : parseGatewayMessage(text);
    if (!parsed.ok) {
      this.log.error({ error: parsed.error }, 'bad message from gateway; closing');
      ws.close(CloseCode.badMessage, 'bad message');
      return;
    }
    const msg = parsed.message;
    switch (msg.type) {
      case 'registered': {
        if (this.phase !== 'registering') {
          this.wrongPhase(ws, msg.type);
          return;
        }
        clearTimeout(this.registerTimer);
        this.phase = 'registered';
        this.attempt = 0;
        this.droppedOutput = 0;
        this.outageLogged = false;
        this.log.info({ session_id: msg.session_id, gateway_id: msg.gateway_id }, 'registered');
        this.startHeartbeat(ws, msg.heartbeat_interval_ms);
        this.opts.onRegistered(msg);
        return;
      }
      case 'refused':
        this.refused = true;
        if (msg.code === 'name_held') {
          this.log.error(
            { reason: msg.reason, code: msg.code },
            'registration refused: another enrolled identity holds this agent name. If this host replaces it, an operator releases the name (fluke agent release NAME); retrying with backoff',
          );
        } else {
          this.log.error({ reason: msg.reason, code: msg.code }, 'registration refused');
        }
        ws.close(CloseCode.normal, 'refused');
        return;
      case 'run':
      case 'result_ack':
      case 'result_retry':
      case 'cancel':
        if (this.phase !== 'registered') {
          this.wrongPhase(ws, msg.type);
          return;
        }
        this.opts.onMessage(msg);
        return;
      default:
        assertNever(msg, 'gateway message');
    }
  }

  private wrongPhase(ws: WebSocket, type: string): void {
    this.log.error({ type, phase: this.phase }, 'gateway message out of phase; closing');
    ws.close(CloseCode.wrongPhase, 'wrong phase');
  }

  private startHeartbeat(ws: WebSocket, intervalMs: number): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = keepHeartbeat(ws, intervalMs, {
      lastHeard: () => this.lastHeard,
      buildHeartbeat: () => this.opts.buildHeartbeat(),
      log: this.log,
    });
  }

  private clearSessionTimers(): void {
    clearTimeout(this.registerTimer);
    clearInterval(this.heartbeatTimer);
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.clearSessionTimers();
    // Meant for this socket only: its results are still in the outbox and go again once registered.
    this.batch.clear();
    this.ws = null;
    if (this.phase === 'stopped') {
      for (const resolve of this.stopWaiters.splice(0)) resolve();
      return;
    }
    const wasRegistered = this.phase === 'registered';
    if (wasRegistered) this.attempt = 0;
    const next = reconnectDelay(this.opts, { refused: this.refused, code, attempt: this.attempt });
    const delay = next.delayMs;
    this.attempt = next.attempt;
    this.phase = 'idle';
    const fields = { code, reason, delay_ms: delay, was_registered: wasRegistered, attempt: this.attempt };
    if (this.outageLogged) this.log.debug(fields, 'disconnected; will reconnect');
    else this.log.warn(fields, 'disconnected; will reconnect');
    this.outageLogged = true;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
