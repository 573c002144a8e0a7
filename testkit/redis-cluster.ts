/**
 * A private Redis Cluster for a test or a bench: `masters` masters with `replicas` replicas each on
 * free loopback ports, created with `redis-cli --cluster create`, short node timeouts so a killed
 * master's replica takes over within seconds. No persistence, `noeviction` as BullMQ needs.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { spawnRedisServer, waitForRedis } from '../bin/redis-server.js';
import { ask, distinctPorts, killNow, running, until as untilFor } from './redis-nodes.js';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  url: string;
}

export interface TestRedisCluster {
  /** Seed node URLs for `server.redis.cluster_nodes` (every node). */
  nodes: string[];
  /** A unique key prefix for this test file. */
  prefix: string;
  /** A fresh cluster client (closed by stop()). */
  client(): Cluster;
  /** The nodes that are masters now (as the cluster says, asked of a live node). */
  masters(): Promise<ClusterNode[]>;
  /** The master serving `key`'s slot now. */
  masterOf(key: string): Promise<ClusterNode>;
  /** kill -9 one node. */
  kill(port: number): Promise<void>;
  /** kill -9 the master serving `key`, then wait until a replica serves its slot (and the cluster is ok). */
  failover(key: string, timeoutMs?: number): Promise<{ killed: ClusterNode; promoted: ClusterNode }>;
  /** Start a killed node again (it rejoins as a replica of whoever took its slots). */
  restart(port: number): Promise<void>;
  /** FLUSHALL on every master. */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

const NODE_TIMEOUT_MS = 1_500;

function nodeArgs(port: number): string[] {
  return [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    `nodes-${port}.conf`,
    '--cluster-node-timeout',
    String(NODE_TIMEOUT_MS),
    // A replica may take over however long it was cut off (tests kill masters at any moment).
    '--cluster-replica-validity-factor',
    '0',
  ];
}

const until = (what: string, timeoutMs: number, check: () => Promise<boolean>) =>
  untilFor('redis cluster', what, timeoutMs, check);

/** `CLUSTER SHARDS`-free parsing of `CLUSTER NODES`: port → role and slots. */
async function topology(
  port: number,
): Promise<Array<{ port: number; master: boolean; failed: boolean; slots: string[] }>> {
  const text = (await ask(port, (c) => c.call('CLUSTER', 'NODES'))) as string;
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(' ');
      const nodePort = Number(/:(\d+)@/.exec(f[1] ?? '')?.[1]);
      const flags = f[2] ?? '';
      return {
        port: nodePort,
        master: flags.includes('master'),
        failed: /fail/.test(flags),
        slots: f.slice(8),
      };
    });
}

function slotOf(key: string): Promise<number> {
  return Promise.resolve(clusterKeySlot(key));
}

export async function startRedisCluster(
  options: { masters?: number; replicas?: number } = {},
): Promise<TestRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const count = masters * (replicas + 1);
  const dir = mkdtempSync(join(tmpdir(), 'fluke-cluster-'));
  const ports = await distinctPorts(count);
  const procs = new Map<number, ChildProcess>();
  const launch = async (port: number) => {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir, { recursive: true });
    procs.set(port, spawnRedisServer(port, nodeDir, { extraArgs: nodeArgs(port) }));
    await waitForRedis(`redis://127.0.0.1:${port}`);
  };
  await Promise.all(ports.map(launch));
  await run('redis-cli', [
    '--cluster',
    'create',
    ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    String(replicas),
    '--cluster-yes',
  ]);
  const alive = () => ports.filter((p) => running(procs.get(p)));
  const healthy = async () => {
    for (const p of alive()) {
      const info = (await ask(p, (c) => c.call('CLUSTER', 'INFO'))) as string;
      if (!info.includes('cluster_state:ok')) return false;
      const nodes = await topology(p);
      if (nodes.filter((n) => n.master && !n.failed && n.slots.length > 0).length < masters) return false;
      // A replica that has not finished its first sync would take over empty.
      const replication = (await ask(p, (c) => c.info('replication'))) as string;
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
    }
    return true;
  };
  await until('every node agrees the cluster is ok', 30_000, healthy);
  const prefix = `fluke-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const clients: Cluster[] = [];
  const toNode = (port: number): ClusterNode => ({ port, url: `redis://127.0.0.1:${port}` });
  const mastersNow = async () => {
    const nodes = await topology(alive()[0] as number);
    return nodes.filter((n) => n.master && !n.failed && n.slots.length > 0).map((n) => toNode(n.port));
  };
  const masterOf = async (key: string) => {
    const slot = await slotOf(key);
    const nodes = await topology(alive()[0] as number);
    for (const n of nodes) {
      if (!n.master || n.failed) continue;
      for (const range of n.slots) {
        const [lo, hi] = range.split('-').map(Number);
        if (lo !== undefined && slot >= lo && slot <= (hi ?? lo)) return toNode(n.port);
      }
    }
    throw new Error(`redis cluster: no master serves slot ${slot}`);
  };
  const kill = (port: number) => killNow(procs.get(port));
  return {
    nodes: ports.map((p) => toNode(p).url),
    prefix,
    client: () => {
      const c = new Cluster(
        ports.map((port) => ({ host: '127.0.0.1', port })),
        { redisOptions: { maxRetriesPerRequest: null } },
      );
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    masters: mastersNow,
    masterOf,
    kill,
    failover: async (key, timeoutMs = 30_000) => {
      const killed = await masterOf(key);
      await kill(killed.port);
      let promoted: ClusterNode | null = null;
      await until(`a replica took over from ${killed.port}`, timeoutMs, async () => {
        const now = await masterOf(key).catch(() => null);
        if (!now || now.port === killed.port) return false;
        promoted = now;
        return healthy();
      });
      return { killed, promoted: promoted as unknown as ClusterNode };
    },
    restart: async (port) => {
      await launch(port);
      await until(`node ${port} rejoined`, 30_000, healthy);
    },
    flushAll: async () => {
      for (const m of await mastersNow()) await ask(m.port, (c) => c.flushall());
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(ports.map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- CRC16 (XMODEM), Redis Cluster's key → slot ----
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/** The hash slot of a key, hash tags honoured (as `CLUSTER KEYSLOT` computes it). */
export function clusterKeySlot(key: string): number {
  const open = key.indexOf('{');
  let part = key;
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) part = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(part, 'utf8'))
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc % 16_384;
}
