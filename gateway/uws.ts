/**
 * The one place that loads uWebSockets.js. The package silently falls back to a slower `ws`-based
 * implementation when its native binary cannot load for this Node ABI; the fallback lacks
 * `SSLApp` and `getParts`, which is how we tell them apart (and why TLS needs the native one).
 */
import uWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
export { uWS };

export type UwsImplementation = 'native' | 'fallback';

export function uwsImplementation(): UwsImplementation {
  const mod: Record<string, unknown> = uWS as unknown as Record<string, unknown>;
  return typeof mod.SSLApp === 'function' && typeof mod.getParts === 'function' ? 'native' : 'fallback';
}

/** uWS send() status: 1 sent, 0 queued (backpressure building), 2 dropped (over maxBackpressure). */
export const SEND_DROPPED = 2;

/** uWS accepts idleTimeout 0 (off) or 8…960 seconds and aborts the process otherwise. */
export function clampIdleTimeout(seconds: number): number {
  return Math.min(960, Math.max(8, Math.ceil(seconds)));
}
