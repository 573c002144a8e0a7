/**
 * The child processes of bench/gateway.ts. Parent ⇄ child talk over the fork IPC channel:
 * server: → ready {port, implementation}; measure → rss {rss} (after two forced GCs).
 * clients: → done {connected}; count → count {heartbeats}.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { createGateway } from '../gateway/gateway.js';
import { uwsImplementation } from '../gateway/uws.js';
import { SINGLE_REDIS } from '../shared/config/redis-topology.js';
import { createLogger } from '../shared/logger.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { startEchoServer } from './echo-servers.js';

type Msg = { type: string; upto?: number };
const send = (m: Record<string, unknown>) => process.send?.(m);
const gc = (globalThis as { gc?: () => void }).gc;

function onMessage(handler: (m: Msg) => void | Promise<void>): void {
  process.on('message', (m: Msg) => void handler(m));
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
        redis: { url: opts.redis, prefix: 'fluke-bench', ...SINGLE_REDIS },
      },
      redis,
      // warn: per-agent info lines would measure pino, not the gateway.
      logger: createLogger({ level: 'warn', format: 'json' }, 'bench-gateway'),
      gatewayId: 'bench-gw',
      identityKey: randomBytes(32),
    });
    port = (await gateway.listen()).port;
  } else {
    port = (await startEchoServer(opts.kind === 'ws' ? 'ws' : 'uws')).port;
  }
  onMessage(async (m) => {
    if (m.type !== 'measure') return;
    // V8's memory reducer gives emptied heap pages back only after a few idle seconds (the idle
    // server still holds ~30 MiB of module-loading garbage at first): GC once a second until the
    // heap size has been stable for 3 s, so RSS is compared at rest.
    let stable = 0;
    let last = -1;
    for (let i = 0; i < 15 && stable < 3; i++) {
      gc?.();
      const total = process.memoryUsage().heapTotal;
      stable = total === last ? stable + 1 : 0;
      last = total;
      await new Promise((r) => setTimeout(r, 1000));
    }
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
  // The parent opens sockets in steps (`go {upto}` → `done`), so it can read RSS in between.
  const step = async (upto: number) => {
    const target = Math.min(upto, opts.count);
    const worker = async () => {
      while (next < target) await openOne(next++);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, target) }, worker));
    send({ type: 'done', connected });
  };
  onMessage((m) => {
    if (m.type === 'go') void step(Number((m as { upto?: number }).upto ?? opts.count));
    if (m.type === 'count') send({ type: 'count', heartbeats });
  });
  send({ type: 'loaded' });
}
