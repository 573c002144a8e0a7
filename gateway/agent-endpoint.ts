/**
 * The uWebSockets.js side of the gateway: the `/agent` route, the token check before the upgrade,
 * the socket limits, and listen/stop. Everything about the protocol lives in the handlers.
 */
import { accessSync, constants } from 'node:fs';
import type { AgentAuth, AuthDecision } from '../shared/auth.js';
import { clientAddress, NO_TRUSTED_PROXIES, type TrustedProxies } from '../shared/client-address.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode } from '../shared/protocol.js';
import type { AgentConnection } from './agent-connection.js';
import {
  type HttpResponse,
  type TemplatedApp,
  type us_listen_socket,
  uWS,
  uwsImplementation,
} from './uws.js';

export interface EndpointHandlers {
  /**
   * Seconds a source address must wait (it spent its burst of failed upgrades: HTTP 429 with
   * Retry-After, the token is not even looked at), or null.
   */
  throttled(remote: string): number | null;
  /**
   * Pure and synchronous (constant-time token and credential checks), so no onAborted dance is
   * needed. A refusal is answered 401 with its code (`unauthorized`, `credential_rejected`) and
   * counted against the address (and logged, rate-limited) by the handler.
   */
  authorize(authorizationHeader: string, remote: string): AuthDecision;
  accepting(): boolean;
  /** Build the per-socket state for an authorised upgrade. */
  create(auth: AgentAuth, remote: string): AgentConnection;
  open(conn: AgentConnection): void;
  message(conn: AgentConnection, frame: Frame): void;
  close(conn: AgentConnection, code: number, reason: string): void;
}

/** A received frame: text to parse, or a refusal the endpoint already decided on. */
export type Frame = { ok: true; text: string } | { ok: false; code: number; reason: string };

/** uWS copies the own properties of the upgrade's user data, so class instances travel wrapped. */
export interface SocketData {
  conn: AgentConnection;
}

export interface AgentEndpointOptions {
  tls: { cert_file: string; key_file: string } | null;
  /** Frames above this are refused with 1009 and a reason. */
  maxPayloadBytes: number;
  idleTimeoutSeconds: number;
  /** Per-socket send buffer; a send attempted beyond it is dropped by uWS and we disconnect. */
  maxBackpressureBytes: number;
  handlers: EndpointHandlers;
  logger: Logger;
  /** Balancers whose PROXY v2 header or X-Forwarded-For names the agent's address (default none). */
  trustedProxies?: TrustedProxies;
}

export interface AgentEndpoint {
  listen(host: string, port: number): Promise<number>;
  stopListening(): void;
}

function refuse(res: HttpResponse, status: string, error: string, code: string): void {
  res
    .writeStatus(status)
    .writeHeader('content-type', 'application/json')
    .writeHeader('x-content-type-options', 'nosniff')
    .writeHeader('www-authenticate', 'Bearer')
    .end(JSON.stringify({ error, code }), true);
}

function createApp(tls: AgentEndpointOptions['tls'], trusted: TrustedProxies): TemplatedApp {
  if (!trusted.empty && uwsImplementation() === 'fallback') {
    throw new Error(
      'server.http.trusted_proxies needs the native uWebSockets.js binary (it reads the PROXY v2 header), but the ws fallback loaded',
    );
  }
  if (!tls) return uWS.App();
  if (uwsImplementation() === 'fallback') {
    throw new Error('TLS needs the native uWebSockets.js binary, but the ws fallback loaded');
  }
  for (const file of [tls.cert_file, tls.key_file]) accessSync(file, constants.R_OK);
  return uWS.SSLApp({ cert_file_name: tls.cert_file, key_file_name: tls.key_file });
}

/** Size, text and UTF-8 checks of one incoming frame. */
function frameReader(maxPayloadBytes: number): (message: ArrayBuffer, isBinary: boolean) => Frame {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return (message: ArrayBuffer, isBinary: boolean): Frame => {
    if (message.byteLength > maxPayloadBytes) {
      return {
        ok: false,
        code: CloseCode.tooLarge,
        reason: `message larger than ${maxPayloadBytes} bytes`,
      };
    }
    if (isBinary) return { ok: false, code: CloseCode.badMessage, reason: 'binary frames are not accepted' };
    try {
      // Decode now: uWS neuters the ArrayBuffer when this callback returns.
      return { ok: true, text: decoder.decode(message) };
    } catch {
      return { ok: false, code: CloseCode.badMessage, reason: 'invalid UTF-8' };
    }
  };
}

export function createAgentEndpoint(opts: AgentEndpointOptions): AgentEndpoint {
  const { handlers, logger } = opts;
  const readFrame = frameReader(opts.maxPayloadBytes);
  let listenSocket: us_listen_socket | null = null;
  const trusted = opts.trustedProxies ?? NO_TRUSTED_PROXIES;

  const app = createApp(opts.tls, trusted)
    .ws<SocketData>('/agent', {
      // uWS drops (without a close frame) anything above its own limit; we set it at twice ours so a
      // moderately oversized frame still gets a clean 1009 the agent can act on.
      maxPayloadLength: opts.maxPayloadBytes * 2,
      idleTimeout: opts.idleTimeoutSeconds,
      maxBackpressure: opts.maxBackpressureBytes,
      // Typed as a number in the bundled d.ts; uWS reads it as a boolean.
      closeOnBackpressureLimit: 1,
      sendPingsAutomatically: true,
      compression: uWS.DISABLED,
      upgrade: (res, req, context) => {
        if (!handlers.accepting()) {
          res
            .writeStatus('503 Service Unavailable')
            .writeHeader('content-type', 'application/json')
            .writeHeader('x-content-type-options', 'nosniff')
            .end('{"error":"gateway draining","code":"draining"}', true);
          return;
        }
        const remote = clientAddress(
          Buffer.from(res.getRemoteAddressAsText()).toString(),
          trusted.empty ? '' : Buffer.from(res.getProxiedRemoteAddressAsText()).toString(),
          trusted.empty ? '' : req.getHeader('x-forwarded-for'),
          trusted,
        );
        const wait = handlers.throttled(remote);
        if (wait !== null) {
          res
            .writeStatus('429 Too Many Requests')
            .writeHeader('content-type', 'application/json')
            .writeHeader('retry-after', String(wait))
            .end('{"error":"too many failed upgrades from this address","code":"throttled"}', true);
          return;
        }
        const decision = handlers.authorize(req.getHeader('authorization'), remote);
        if (!decision.ok) {
          refuse(res, '401 Unauthorized', decision.error, decision.code);
          return;
        }
        const data: SocketData = { conn: handlers.create(decision.auth, remote) };
        res.upgrade(
          data,
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      },
      open: (ws) => {
        const { conn } = ws.getUserData();
        conn.attach(ws);
        handlers.open(conn);
      },
      message: (ws, message, isBinary) => {
        handlers.message(ws.getUserData().conn, readFrame(message, isBinary));
      },
      close: (ws, code, message) => {
        handlers.close(ws.getUserData().conn, code, Buffer.from(message).toString());
      },
    })
    .any('/*', (res) => {
      res
        .writeStatus('404 Not Found')
        .writeHeader('content-type', 'application/json')
        .writeHeader('x-content-type-options', 'nosniff')
        .end('{"error":"not found","code":"not_found"}', true);
    });

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        const done = (socket: us_listen_socket | false) => {
          if (!socket) return reject(new Error(`cannot listen on ${host || '*'}:${port}`));
          listenSocket = socket;
          const actual = uWS.us_socket_local_port(
            socket as unknown as Parameters<typeof uWS.us_socket_local_port>[0],
          );
          logger.info(
            { host: host || '*', port: actual, tls: opts.tls !== null },
            'agent endpoint listening',
          );
          resolve(actual);
        };
        if (host) app.listen(host, port, done);
        else app.listen(port, done);
      });
    },
    stopListening() {
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = null;
    },
  };
}
