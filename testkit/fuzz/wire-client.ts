/**
 * One fuzz case on a fresh socket: bring the connection to its phase, send the frame, and see what
 * the gateway did. A ping after the frame is the barrier: the gateway handles frames in order and
 * refuses synchronously, so a close arrives before the pong; no close by the pong means taken.
 */
import WebSocket from 'ws';
import { parseGatewayMessage } from '../../shared/protocol.js';
import { validFrame } from './frames.js';
import type { FuzzFrame } from './mutate.js';
import type { FuzzPhase } from './oracle.js';
import { rng } from './prng.js';

export type OutcomeKind = 'accepted' | 'closed' | 'http' | 'timeout' | 'setup_failed' | 'error';

export interface Outcome {
  kind: OutcomeKind;
  /** Close code, or HTTP status for `http`. */
  code: number;
  reason: string;
  /** A `registered` arrived after the frame was sent (a register in the `new` phase takes one). */
  registered: boolean;
  /** Message types the gateway sent after the frame. */
  replies: string[];
}

export interface CaseOptions {
  url: string;
  token: string;
  /** The agent name a setup register uses (registering and registered phases). */
  agent: string;
  timeoutMs: number;
}

/**
 * The setup's `register`: built like the fuzzer's valid frames (from the schema, so a field the
 * protocol adds is filled in), fixed by the seed so every session sends the same one.
 */
export function registerFrame(agent: string): string {
  return JSON.stringify(validFrame(rng(1), 'register', agent));
}

export function runCase(phase: FuzzPhase, frame: FuzzFrame, o: CaseOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(o.url, {
      headers: { authorization: `Bearer ${o.token}` },
      maxPayload: 8 * 1024 * 1024,
    });
    const replies: string[] = [];
    let setupDone = phase === 'new';
    let sent = false;
    let registered = false;
    let settled = false;
    const finish = (kind: OutcomeKind, code = 0, reason = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('close');
      ws.on('error', () => {});
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
      resolve({
        kind: setupDone || kind === 'http' ? kind : 'setup_failed',
        code,
        reason,
        registered,
        replies,
      });
    };
    const timer = setTimeout(() => finish('timeout'), o.timeoutMs);
    const sendFrame = () => {
      sent = true;
      ws.send(frame.bytes, { binary: frame.binary }, () => {});
    };
    const barrier = () => ws.ping();
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      finish('http', res.statusCode ?? 0);
    });
    ws.on('close', (code, reason) => finish('closed', code, reason.toString().slice(0, 200)));
    ws.on('pong', () => {
      if (setupDone && sent) finish('accepted');
    });
    ws.on('message', (data) => {
      const parsed = parseGatewayMessage(data.toString());
      const type = parsed.ok ? parsed.message.type : 'invalid';
      if (!setupDone) {
        if (type !== 'registered') return finish('setup_failed', 0, `setup got ${type}`);
        setupDone = true;
        sendFrame();
        barrier();
        return;
      }
      if (phase === 'registering' && type === 'registered' && !registered) {
        // The setup's answer; the frame, held meanwhile, is handled right after it.
        registered = true;
        barrier();
        return;
      }
      replies.push(type);
      // A register taken in the new phase answers asynchronously (registry write first).
      if (type === 'registered') {
        registered = true;
        barrier();
      }
    });
    ws.on('open', () => {
      if (phase === 'new') {
        sendFrame();
        // A frame that parses as a register: wait for its answer rather than the ping.
        if (!looksLikeRegister(frame)) barrier();
      } else {
        ws.send(registerFrame(o.agent));
        if (phase === 'registering') {
          // Register and frame back to back: the frame arrives while the registry write is in
          // flight. A refusal may come before `registered` (a frame the endpoint refuses unread).
          setupDone = true;
          sendFrame();
        }
      }
    });
  });
}

function looksLikeRegister(frame: FuzzFrame): boolean {
  if (frame.binary) return false;
  try {
    const v = JSON.parse(frame.bytes.toString('utf8')) as { type?: unknown };
    return v !== null && typeof v === 'object' && v.type === 'register';
  } catch {
    return false;
  }
}
