/**
 * Gateway benchmark. In one run, each server in its own child process, holding the same N sockets
 * opened by separate client processes:
 *   (a) a bare uWebSockets.js echo server, (b) a plain `ws` echo server, (c) the Fluke gateway with
 *   every client registered as an agent against a real Redis.
 * Reports RSS per held socket (after GC, delta over the idle server), registrations per second,
 * and heartbeat cost in Redis commands (INFO commandstats deltas over a window).
 *
 *   node --import tsx bench/gateway.ts [--agents 10000] [--clients 2] [--heartbeat-ms 5000]
 *                                      [--window-ms 15000] [--write]   (--write: update RESULTS.md)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis } from '../testkit/redis.js';
import { runClients, runServer } from './gateway-children.js';
import { writeResultsSection } from './results-file.js';

const SELF = fileURLToPath(import.meta.url);
const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '2' },
    'heartbeat-ms': { type: 'string', default: '5000' },
    'window-ms': { type: 'string', default: '15000' },
    write: { type: 'boolean', default: false },
    child: { type: 'string' },
    kind: { type: 'string' },
    url: { type: 'string' },
    count: { type: 'string' },
    offset: { type: 'string' },
    redis: { type: 'string' },
  },
});

type Msg = Record<string, unknown> & { type: string };

function spawnChild(childArgs: string[]): ChildProcess {
  return fork(SELF, childArgs, {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function waitFor(child: ChildProcess, type: string): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: Msg) => {
      if (m.type !== type) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) =>
      reject(new Error(`child exited (${code}) while waiting for ${type}`));
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

async function ask(child: ChildProcess, type: string, reply: string): Promise<Msg> {
  const p = waitFor(child, reply);
  child.send({ type });
  return p;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

function commandStats(info: string): Map<string, number> {
  const stats = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(m[1] ?? '', Number(m[2]));
  return stats;
}

interface Row {
  server: string;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  perSocketBytes: number;
  /** (RSS at N − RSS at N/2) / (N/2): the cost of one more socket, without one-time growth. */
  marginalBytes: number;
  connected: number;
  seconds: number;
}

async function measureServer(
  kind: 'uws' | 'ws' | 'gateway',
  n: number,
  clientProcs: number,
  extra: { redis?: string; hb: number; windowMs: number },
): Promise<{ row: Row; implementation?: string; heartbeat?: Record<string, number> }> {
  const serverArgs = ['--child', 'server', '--kind', kind];
  if (extra.redis) serverArgs.push('--redis', extra.redis);
  serverArgs.push('--heartbeat-ms', String(extra.hb));
  const server = spawnChild(serverArgs);
  const ready = await waitFor(server, 'ready');
  const beforeMem = await ask(server, 'measure', 'rss');
  const before = Number(beforeMem.rss);
  const url = `ws://127.0.0.1:${ready.port}${kind === 'gateway' ? '/agent' : '/'}`;
  const per = Math.ceil(n / clientProcs);
  const clients: ChildProcess[] = [];
  const loaded: Array<Promise<Msg>> = [];
  for (let i = 0; i < clientProcs; i++) {
    const count = Math.min(per, n - i * per);
    clients.push(
      spawnChild([
        '--child',
        'clients',
        '--kind',
        kind === 'gateway' ? 'agent' : 'echo',
        '--url',
        url,
        '--count',
        String(count),
        '--offset',
        String(i * per),
        '--heartbeat-ms',
        String(extra.hb),
      ]),
    );
    loaded.push(waitFor(clients[i] as ChildProcess, 'loaded'));
  }
  // Time the sockets, not the client processes' startup. Two steps: half, then all, so the marginal
  // cost per socket (slope) can be told apart from one-time growth (JIT, allocator pools).
  await Promise.all(loaded);
  const open = async (upto: number) => {
    const finished = clients.map((c) => waitFor(c, 'done'));
    for (const c of clients) c.send({ type: 'go', upto });
    return (await Promise.all(finished)).reduce((s, m) => s + Number(m.connected), 0);
  };
  const started = Date.now();
  const half = await open(Math.ceil(per / 2));
  const halfSeconds = (Date.now() - started) / 1000;
  const mid = Number((await ask(server, 'measure', 'rss')).rss);
  const resumed = Date.now();
  const connected = await open(per);
  const seconds = halfSeconds + (Date.now() - resumed) / 1000;
  const afterMem = await ask(server, 'measure', 'rss');
  const after = Number(afterMem.rss);
  console.log(JSON.stringify({ kind, before: beforeMem, after: afterMem }));
  const row: Row = {
    server: kind,
    rssBeforeMiB: before / 2 ** 20,
    rssAfterMiB: after / 2 ** 20,
    perSocketBytes: (after - before) / connected,
    marginalBytes: (after - mid) / (connected - half),
    connected,
    seconds,
  };
  let heartbeat: Record<string, number> | undefined;
  if (kind === 'gateway' && extra.redis) {
    const redis = new Redis(extra.redis);
    await redis.config('RESETSTAT');
    const beatsBefore = await Promise.all(clients.map((c) => ask(c, 'count', 'count')));
    await new Promise((r) => setTimeout(r, extra.windowMs));
    const beatsAfter = await Promise.all(clients.map((c) => ask(c, 'count', 'count')));
    const stats = commandStats(await redis.info('commandstats'));
    redis.disconnect();
    const beats = beatsAfter.reduce(
      (s, m, i) => s + Number(m.heartbeats) - Number(beatsBefore[i]?.heartbeats),
      0,
    );
    heartbeat = { heartbeats: beats };
    for (const [cmd, calls] of stats) if (cmd !== 'info' && cmd !== 'config') heartbeat[cmd] = calls / beats;
  }
  await Promise.all(clients.map(stop));
  await stop(server);
  return {
    row,
    ...(ready.implementation ? { implementation: String(ready.implementation) } : {}),
    ...(heartbeat ? { heartbeat } : {}),
  };
}

function openFileLimit(): string {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  return (
    line
      ?.split(/\s{2,}/)
      .slice(1, 3)
      .join(' / ') ?? 'unknown'
  );
}

async function main(): Promise<void> {
  const n = Number(args.agents);
  const clientProcs = Number(args.clients);
  const hb = Number(args['heartbeat-ms']);
  const windowMs = Number(args['window-ms']);
  console.log(
    `open files (soft / hard): ${openFileLimit()}; ${n} sockets from ${clientProcs} client processes`,
  );
  const redisServer = await startRedis();
  try {
    const rows: Row[] = [];
    let implementation = 'unknown';
    let heartbeat: Record<string, number> = {};
    for (const kind of ['uws', 'ws', 'gateway'] as const) {
      const res = await measureServer(kind, n, clientProcs, { redis: redisServer.url, hb, windowMs });
      rows.push(res.row);
      if (res.implementation) implementation = res.implementation;
      if (res.heartbeat) heartbeat = res.heartbeat;
      console.log(JSON.stringify(res));
    }
    const report = renderReport({ n, clientProcs, hb, windowMs, rows, implementation, heartbeat });
    console.log(report);
    if (args.write) writeResultsSection('Gateway', report);
  } finally {
    await redisServer.stop();
  }
}

function renderReport(r: {
  n: number;
  clientProcs: number;
  hb: number;
  windowMs: number;
  rows: Row[];
  implementation: string;
  heartbeat: Record<string, number>;
}): string {
  const gw = r.rows.find((x) => x.server === 'gateway');
  const perHb = Object.entries(r.heartbeat).filter(([k]) => k !== 'heartbeats');
  const total = perHb.reduce((s, [, v]) => s + v, 0);
  const issued = perHb
    .filter(([k]) => !['hget', 'hset', 'pexpire'].includes(k))
    .reduce((s, [, v]) => s + v, 0);
  const cpu = cpus()[0]?.model ?? 'unknown';
  const lines = [
    '## Gateway',
    '',
    `Command: \`node --import tsx bench/gateway.ts --agents ${r.n} --clients ${r.clientProcs} --heartbeat-ms ${r.hb} --window-ms ${r.windowMs}\``,
    '',
    `Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, ` +
      `${process.platform}/${process.arch}; open-file limit ${openFileLimit()}. ` +
      `uWebSockets.js implementation: **${r.implementation}**. Date: ${new Date().toISOString().slice(0, 10)}.`,
    '',
    'Each server runs alone in a child process; clients run in other processes. RSS is read at rest',
    '(GC once a second until the heap size is stable for 3 s) idle, at N/2 and at N sockets. "Marginal"',
    'is the slope between N/2 and N: the cost of one more socket without one-time growth. Gateway',
    'clients register as agents (real Redis: registry entry, index, connect-reconcile job each) and',
    'heartbeat, spread over the interval, during the second half and the heartbeat window.',
    '',
    '| server | sockets held | RSS idle (MiB) | RSS holding (MiB) | (holding − idle) / N | marginal (N/2 → N) | connect (+register) time |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.server === 'uws' ? 'bare uWebSockets.js echo' : x.server === 'ws' ? 'plain `ws` echo' : 'Fluke gateway (registered agents)'} | ${x.connected} | ${x.rssBeforeMiB.toFixed(1)} | ${x.rssAfterMiB.toFixed(1)} | ${(x.perSocketBytes / 1024).toFixed(2)} KiB | ${(x.marginalBytes / 1024).toFixed(2)} KiB | ${x.seconds.toFixed(1)} s |`,
    ),
    '',
    `- Gateway RSS per agent at ${gw?.connected ?? 0} agents: **${((gw?.perSocketBytes ?? 0) / 1024).toFixed(2)} KiB** overall, ` +
      `**${((gw?.marginalBytes ?? 0) / 1024).toFixed(2)} KiB** marginal (target ≤ 3 KB).`,
    `- Registrations per second (connect + upgrade + register + registry write + reconcile job, ${r.clientProcs} client processes): **${gw ? Math.round(gw.connected / gw.seconds) : 0}/s**.`,
    `- Heartbeat cost, measured over ${r.windowMs / 1000} s (${r.heartbeat.heartbeats ?? 0} heartbeats, INFO commandstats delta): ` +
      `**${total.toFixed(2)} Redis commands per heartbeat** counting the Lua script's inner calls ` +
      `(${issued.toFixed(2)} sent by the gateway) → **${((total * 60_000) / 10_000).toFixed(1)} commands per agent per minute** ` +
      `at the default 10 s heartbeat (${((total * 60_000) / r.hb).toFixed(1)} at the ${r.hb / 1000} s used here).`,
    `- Per heartbeat: ${perHb.map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}.`,
    '',
  ];
  return lines.join('\n');
}

if (args.child === 'server') {
  await runServer({
    kind: args.kind ?? 'uws',
    redis: args.redis ?? null,
    heartbeatMs: Number(args['heartbeat-ms']),
  });
} else if (args.child === 'clients') {
  await runClients({
    kind: args.kind === 'agent' ? 'agent' : 'echo',
    url: args.url ?? '',
    count: Number(args.count),
    offset: Number(args.offset ?? 0),
    heartbeatMs: Number(args['heartbeat-ms']),
  });
} else {
  await main();
}
