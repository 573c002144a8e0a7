/**
 * The connection's two clocks: how long to wait before reconnecting after a close, and the
 * heartbeat loop that also notices a gateway gone silent.
 */
import { WebSocket } from 'ws';
import { liveness } from '../shared/liveness.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode, encode, type HeartbeatMessage } from '../shared/protocol.js';
import { backoffDelay, refusalDelay } from './backoff.js';
import type { ConnectionOptions } from './connection-options.js';

type BackoffOptions = Pick<ConnectionOptions, 'backoffBaseMs' | 'backoffCapMs' | 'random'>;

/** The delay before the next connect, and the attempt count to carry into it. */
export function reconnectDelay(
  opts: BackoffOptions,
  closed: { refused: boolean; code: number; attempt: number },
): { delayMs: number; attempt: number } {
  const base = opts.backoffBaseMs ?? 500;
  const cap = opts.backoffCapMs ?? 30_000;
  const random = opts.random ?? Math.random;
  const { attempt } = closed;
  if (closed.refused || closed.code === CloseCode.refused)
    return { delayMs: refusalDelay(cap, random), attempt };
  // The gateway is draining, not failing: come back promptly (jittered) to another one.
  if (closed.code === CloseCode.goingAway) return { delayMs: backoffDelay(0, base, cap, random), attempt };
  return { delayMs: backoffDelay(attempt, base, cap, random), attempt: attempt + 1 };
}

export interface HeartbeatSource {
  /** When the gateway was last heard from (any frame or pong), as Date.now(). */
  lastHeard(): number;
  buildHeartbeat(): HeartbeatMessage;
  log: Logger;
}

/** Sends a heartbeat and a ping every interval; terminates the socket once the gateway is silent too long. */
export function keepHeartbeat(ws: WebSocket, intervalMs: number, source: HeartbeatSource): NodeJS.Timeout {
  const { silenceMs } = liveness(intervalMs);
  return setInterval(() => {
    // A gateway that vanished without a FIN (host death, network cut) is only noticed by silence.
    if (Date.now() - source.lastHeard() > silenceMs) {
      source.log.warn({ silent_ms: Date.now() - source.lastHeard() }, 'gateway silent; reconnecting');
      ws.terminate();
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(encode(source.buildHeartbeat()));
    ws.ping();
  }, intervalMs);
}
