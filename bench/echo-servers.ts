/**
 * Reference servers for the gateway benchmark: a bare uWebSockets.js echo server and a plain `ws`
 * echo server, each meant to run alone in a child process so its RSS can be read on its own.
 * `startEchoServer(kind)` is also usable in-process.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { uWS } from '../gateway/uws.js';

export type EchoKind = 'uws' | 'ws';

export interface EchoServer {
  port: number;
  close(): void;
}

export function startEchoServer(kind: EchoKind): Promise<EchoServer> {
  if (kind === 'ws') {
    return new Promise((resolve) => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 }, () => {
        resolve({ port: (wss.address() as AddressInfo).port, close: () => wss.close() });
      });
      wss.on('connection', (socket) => {
        socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
      });
    });
  }
  return new Promise((resolve, reject) => {
    const app = uWS.App().ws('/*', {
      idleTimeout: 0,
      maxPayloadLength: 64 * 1024,
      message: (ws, message, isBinary) => {
        ws.send(message, isBinary);
      },
    });
    app.listen('127.0.0.1', 0, (socket) => {
      if (!socket) return reject(new Error('uWS echo server could not listen'));
      resolve({
        port: uWS.us_socket_local_port(socket as unknown as Parameters<typeof uWS.us_socket_local_port>[0]),
        close: () => uWS.us_listen_socket_close(socket),
      });
    });
  });
}
