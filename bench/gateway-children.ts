/**
 * The child processes of bench/gateway.ts. Parent ⇄ child talk over the fork IPC channel:
 * server: → ready {port, implementation}; measure → rss {rss} (after two forced GCs).
 * clients: → done {connected}; count → count {heartbeats}.
 */
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { createGateway } from '../gateway/gateway.js';
import { uwsImplementation } from '../gateway/uws.js';
import { createLogger } from '../shared/logger.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { startEchoServer } from './echo-servers.js';

type Msg = { type: string };
const send = (m: Record<string, unknown>) => process.send?.(m);
const gc = (globalThis as { gc?: () => void }).gc;

function onMessage(handler: (m: Msg) => void): void {
  process.on('message', (m: Msg) => handler(m));
}

export async function runServer(opts: {
  kind: string;
  redis: string | null;
  heartbeatMs: number;
}): Promise<void> {
  let port: number;
  if (opts.kind === 'gateway') {
    if (!opts.redis) throw new Error('gateway server needs --redis');
    const redis = new Redis(opts.redis, { maxRetriesPerRequest: null });
    const gateway = createGateway({
      config: {
        listen_agents: '127.0.0.1:0',
        agent_tokens: ['bench-token'],
        scoped_agent_tokens: [],
        heartbeat_interval_ms: opts.heartbeatMs,
        tls: { enabled: false, cert_file: null, key_file: null },
        redis: { url: opts.redis, prefix: 'fluke-bench' },
      },
      redis,
      // warn: per-agent info lines would measure pino, not the gateway.
      logger: createLogger({ level: 'warn', format: 'json' }, 'bench-gateway'),
      gatewayId: 'bench-gw',
    });
    port = (await gateway.listen()).port;
  } else {
    port = (await startEchoServer(opts.kind === 'ws' ? 'ws' : 'uws')).port;
  }
  onMessage((m) => {
    if (m.type !== 'measure') return;
    gc?.();
    gc?.();
    const mem = process.memoryUsage();
    send({
      type: 'rss',
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
    });
  });
  send({ type: 'ready', port, implementation: uwsImplementation() });
}

/** Open `count` sockets, at most `concurrency` handshakes at a time; agents register then heartbeat. */
export async function runClients(opts: {
  kind: 'agent' | 'echo';
  url: string;
  count: number;
  offset: number;
  heartbeatMs: number;
}): Promise<void> {
  const concurrency = 200;
  const sockets: WebSocket[] = [];
  let heartbeats = 0;
  let next = 0;
  let connected = 0;
  const openOne = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(opts.url, {
        headers: { authorization: 'Bearer bench-token' },
        perMessageDeflate: false,
      });
      sockets.push(ws);
      ws.once('error', reject);
      ws.once('open', () => {
        if (opts.kind === 'echo') {
          ws.send('hello');
        } else {
          ws.send(
            JSON.stringify({
              type: 'register',
              v: PROTOCOL_VERSION,
              name: `bench-agent-${opts.offset + i}`,
              labels: { role: 'bench', zone: String(i % 4) },
              agent_version: 'bench',
              executors: ['shell'],
              running: [],
            }),
          );
        }
      });
      ws.once('message', () => {
        connected++;
        if (opts.kind === 'agent') {
          // Spread heartbeats over the interval, as real agents connected at random times would.
          const beat = () => {
            if (ws.readyState !== WebSocket.OPEN) return;
            ws.send('{"type":"heartbeat","running":[]}');
            heartbeats++;
          };
          setTimeout(() => {
            beat();
            setInterval(beat, opts.heartbeatMs);
          }, Math.random() * opts.heartbeatMs);
        }
        resolve();
      });
    });
  await new Promise<void>((resolve) => {
    onMessage((m) => {
      if (m.type === 'go') resolve();
    });
    send({ type: 'loaded' });
  });
  const worker = async () => {
    while (next < opts.count) await openOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, opts.count) }, worker));
  onMessage((m) => {
    if (m.type === 'count') send({ type: 'count', heartbeats });
  });
  send({ type: 'done', connected });
}
