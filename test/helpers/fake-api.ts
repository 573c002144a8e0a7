/**
 * A scripted stand-in for Fluke's HTTP API on 127.0.0.1:0, and a captured CliIo, for running the
 * CLI commands in-process (test/cli-client.test.ts, test/cli-follow.test.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CliIo } from '../../bin/cli/cli-context.js';

export type Handler = (req: IncomingMessage, url: URL, res: ServerResponse) => void | Promise<void>;

export interface Fake {
  url: string;
  requests: { path: string; auth: string | undefined }[];
  route(path: string, handler: Handler): void;
}

export async function fakeServer(t: { teardown(fn: () => unknown): void }): Promise<Fake> {
  const routes = new Map<string, Handler>();
  const requests: Fake['requests'] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ path: `${url.pathname}${url.search}`, auth: req.headers.authorization });
    const handler = routes.get(`${req.method} ${url.pathname}`);
    if (!handler) return json(res, 404, { error: `no route for ${url.pathname}`, code: 'not_found' });
    void handler(req, url, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  t.teardown(() => server.closeAllConnections());
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    route: (path, handler) => routes.set(path, handler),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function captureIo(env: NodeJS.ProcessEnv = {}): CliIo & { out: string; err: string } {
  const cap = {
    out: '',
    err: '',
    env,
    columns: null,
    now: () => Date.now(),
    stdout(s: string) {
      cap.out += s;
    },
    stderr(s: string) {
      cap.err += s;
    },
  };
  return cap;
}
