/**
 * A real HTTP server on 127.0.0.1:0 that records every request, for webhook and alert tests.
 * It can answer with failures N times, hold responses (a slow receiver), or go down and come back
 * on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The status this receiver answered with (null while held). */
  status: number | null;
}

export interface HttpReceiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** The next `count` requests get `status` (default 500); later ones get 200 again. */
  failNext(count: number, status?: number, headers?: Record<string, string>): void;
  /** While true, requests are recorded but never answered (until `hold(false)` or `close()`). */
  hold(on: boolean): void;
  /** Resolves once at least `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /** Stops listening (connections refused) but keeps the port for `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startHttpReceiver(): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const failures: { status: number; headers: Record<string, string> }[] = [];
  const held: (() => void)[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let holding = false;

  const notify = () => {
    for (const w of [...waiters]) {
      if (requests.length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const record: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        status: null,
      };
      requests.push(record);
      const respond = () => {
        const failure = failures.shift();
        record.status = failure?.status ?? 200;
        res.writeHead(record.status, { 'content-type': 'text/plain', ...failure?.headers });
        res.end(failure ? `failing on purpose (${record.status})` : 'ok');
      };
      if (holding) held.push(respond);
      else respond();
      notify();
    });
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    requests,
    failNext(count, status = 500, headers = {}) {
      for (let i = 0; i < count; i++) failures.push({ status, headers });
    },
    hold(on) {
      holding = on;
      if (!on) for (const respond of held.splice(0)) respond();
    },
    waitForRequests(count, timeoutMs = 10_000) {
      if (requests.length >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} requests, got ${requests.length}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(requests);
          },
        });
      });
    },
    down: stop,
    up: () => listen(port),
    async close() {
      held.splice(0);
      await stop();
    },
  };
}
