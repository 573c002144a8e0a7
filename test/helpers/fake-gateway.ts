/**
 * A fake gateway for agent tests, made with `ws`: checks the Bearer token before the upgrade,
 * answers `register` (or refuses it), acks results, records every message (the items of a
 * `results` batch one by one, and every frame as it came) and lets the test send anything. Listens on 127.0.0.1, port 0 unless a port is given (to play "another gateway" on
 * the same address after the first one died).
 */
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { type AgentMessage, encode, type GatewayMessage, parseAgentMessage } from '../../shared/protocol.js';

export interface FakeGatewayOptions {
  port?: number;
  token?: string;
  /** Refuse every registration with this reason. */
  refuse?: string;
  /** Ack results as soon as they arrive (default true). */
  autoAck?: boolean;
  heartbeatIntervalMs?: number;
  gatewayId?: string;
  /** Serve wss:// with this certificate (PEM). */
  tls?: { cert: string; key: string };
}

/** A message as the gateway handles it: a `results` batch is recorded as its items. */
export type ReceivedMessage = Exclude<AgentMessage, { type: 'results' }>;

export interface Received {
  /** 1-based connection number on this gateway. */
  conn: number;
  message: ReceivedMessage;
  /** Index into `frames` of the frame that carried it. */
  frame: number;
}

export interface ReceivedFrame {
  conn: number;
  /** The frame's type (`results` for a batch). */
  type: AgentMessage['type'];
  /** Messages in it: the batch size, or 1. */
  count: number;
}

export interface FakeGateway {
  url: string;
  port: number;
  received: Received[];
  frames: ReceivedFrame[];
  /** Authorization headers of every upgrade attempt, accepted or not. */
  authorizations: Array<string | undefined>;
  /** Upgrade attempts (accepted or not), with their times. */
  attempts: number[];
  connections: number;
  closeCodes: number[];
  /** Resolves with the first received message (at index ≥ from) matching `pred`. */
  waitFor<T extends ReceivedMessage>(pred: (m: ReceivedMessage) => m is T, from?: number): Promise<T>;
  waitFor(pred: (m: ReceivedMessage) => boolean, from?: number): Promise<ReceivedMessage>;
  /** Resolves when `n` upgrade attempts have been seen. */
  waitForAttempts(n: number): Promise<void>;
  waitForClose(n: number): Promise<void>;
  /** TLS handshakes the client aborted (e.g. it did not trust the certificate). */
  tlsClientErrors: number;
  waitForTlsClientErrors(n: number): Promise<void>;
  send(message: GatewayMessage): void;
  sendRaw(text: string): void;
  ack(resultIds: string[]): void;
  /** Close the current agent socket with a code (1001 = going away). */
  closeAgent(code: number, reason?: string): void;
  /** Drop every socket without a close frame and stop listening (a kill -9). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

const RESULT_TYPES = new Set(['check_result', 'step_result', 'task_result']);

export async function startFakeGateway(opts: FakeGatewayOptions = {}): Promise<FakeGateway> {
  const token = opts.token ?? 'test-token';
  const autoAck = opts.autoAck ?? true;
  const received: Received[] = [];
  const frames: ReceivedFrame[] = [];
  const authorizations: Array<string | undefined> = [];
  const attempts: number[] = [];
  const closeCodes: number[] = [];
  const waiters = new Set<() => boolean>();
  const notify = (): void => {
    for (const w of waiters) if (w()) waiters.delete(w);
  };
  const until = (ready: () => boolean): Promise<void> =>
    ready()
      ? Promise.resolve()
      : new Promise((resolve) =>
          waiters.add(() => {
            if (!ready()) return false;
            resolve();
            return true;
          }),
        );

  let current: WebSocket | null = null;
  let tlsClientErrors = 0;
  let connections = 0;

  let https: HttpsServer | null = null;
  if (opts.tls) {
    https = createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key });
    https.on('tlsClientError', () => {
      tlsClientErrors++;
      notify();
    });
    await new Promise<void>((resolve, reject) => {
      https?.once('error', reject);
      https?.listen(opts.port ?? 0, '127.0.0.1', resolve);
    });
  }
  const wss = new WebSocketServer({
    ...(https ? { server: https } : { host: '127.0.0.1', port: opts.port ?? 0 }),
    path: '/agent',
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      const auth = info.req.headers.authorization;
      authorizations.push(auth);
      attempts.push(Date.now());
      notify();
      done(auth === `Bearer ${token}`, 401);
    },
  });
  if (!https) {
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
  }
  const port = ((https ?? wss).address() as AddressInfo).port;
  const shutdown = async (): Promise<void> => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    if (https) {
      https.closeAllConnections();
      await new Promise<void>((resolve) => https?.close(() => resolve()));
    }
  };

  wss.on('connection', (ws) => {
    connections++;
    const conn = connections;
    current = ws;
    ws.on('message', (data) => {
      const parsed = parseAgentMessage(data.toString());
      if (!parsed.ok) throw new Error(`agent sent a bad message: ${parsed.error}`);
      const message = parsed.message;
      const frame = frames.length;
      frames.push({
        conn,
        type: message.type,
        count: message.type === 'results' ? message.messages.length : 1,
      });
      const items: ReceivedMessage[] = message.type === 'results' ? message.messages : [message];
      for (const m of items) received.push({ conn, message: m, frame });
      if (message.type === 'register') {
        if (opts.refuse !== undefined) {
          ws.send(encode({ type: 'refused', reason: opts.refuse }));
          ws.close(4403, 'refused');
        } else {
          ws.send(
            encode({
              type: 'registered',
              v: 1,
              session_id: `session-${conn}`,
              gateway_id: opts.gatewayId ?? 'fake-gateway',
              heartbeat_interval_ms: opts.heartbeatIntervalMs ?? 10_000,
            }),
          );
        }
      } else if (autoAck) {
        const ids = items.flatMap((m) => (RESULT_TYPES.has(m.type) && 'result_id' in m ? [m.result_id] : []));
        if (ids.length > 0) ws.send(encode({ type: 'result_ack', result_ids: ids }));
      }
      notify();
    });
    ws.on('close', (code) => {
      closeCodes.push(code);
      if (current === ws) current = null;
      notify();
    });
  });

  const gw: FakeGateway = {
    url: `${https ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    port,
    received,
    frames,
    authorizations,
    attempts,
    closeCodes,
    get connections() {
      return connections;
    },
    waitFor(pred: (m: ReceivedMessage) => boolean, from = 0): Promise<ReceivedMessage> {
      const find = () => received.slice(from).find((r) => pred(r.message))?.message;
      return until(() => find() !== undefined).then(() => find()!);
    },
    waitForAttempts: (n) => until(() => attempts.length >= n),
    waitForClose: (n) => until(() => closeCodes.length >= n),
    get tlsClientErrors() {
      return tlsClientErrors;
    },
    waitForTlsClientErrors: (n) => until(() => tlsClientErrors >= n),
    send(message) {
      if (!current) throw new Error('no agent connected');
      current.send(encode(message));
    },
    sendRaw(text) {
      if (!current) throw new Error('no agent connected');
      current.send(text);
    },
    ack(resultIds) {
      gw.send({ type: 'result_ack', result_ids: resultIds });
    },
    closeAgent(code, reason = '') {
      current?.close(code, reason);
    },
    kill: shutdown,
    close: shutdown,
  } as FakeGateway;
  return gw;
}
