/**
 * A private Redis with Sentinel for a test or a bench: one master, `replicas` replicas and three
 * `redis-sentinel` processes (quorum 2) on free loopback ports, with a short down-after so a killed
 * master is replaced within seconds. No persistence, `noeviction` as BullMQ needs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { spawnRedisServer, waitForRedis } from '../bin/redis-server.js';
import type { TestRedis } from './redis.js';
import { ask, distinctPorts, killNow, running, until as untilFor } from './redis-nodes.js';

export const TEST_MASTER_NAME = 'fluke-test-master';

export interface TestRedisSentinel {
  /** `host:port` of each Sentinel, for `server.redis.sentinels`. */
  sentinels: string[];
  masterName: string;
  /** A unique key prefix for this test file. */
  prefix: string;
  /** The port of the master the Sentinels name now. */
  masterPort(): Promise<number>;
  /** A fresh client that follows the master through the Sentinels (closed by stop()). */
  client(): Redis;
  /** kill -9 the current master and wait until the Sentinels have promoted a replica. */
  failover(timeoutMs?: number): Promise<{ killed: number; promoted: number }>;
  /** kill -9 one server (a data node), without waiting for anything else. */
  kill(port: number): Promise<void>;
  /** Send a signal to a data node: SIGSTOP freezes it (a replica that stops acking), SIGCONT resumes. */
  signal(port: number, sig: NodeJS.Signals): void;
  /** The data nodes' ports (master and replicas, in start order). */
  dataPorts: number[];
  /** Start a killed server again (Sentinel turns it into a replica of the new master). */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

const DOWN_AFTER_MS = 1_000;

const until = (what: string, timeoutMs: number, check: () => Promise<boolean>) =>
  untilFor('redis sentinel', what, timeoutMs, check);

export async function startRedisSentinel(options: { replicas?: number } = {}): Promise<TestRedisSentinel> {
  const replicas = options.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'fluke-sentinel-'));
  const [masterPort, ...rest] = await distinctPorts(1 + replicas + 3);
  const dataPorts = [masterPort as number, ...rest.slice(0, replicas)];
  const sentinelPorts = rest.slice(replicas);
  const procs = new Map<number, ChildProcess>();
  const launchData = async (port: number, replicaOf: number | null) => {
    const d = join(dir, String(port));
    mkdirSync(d, { recursive: true });
    const extraArgs = replicaOf === null ? [] : ['--replicaof', '127.0.0.1', String(replicaOf)];
    procs.set(port, spawnRedisServer(port, d, { extraArgs }));
    await waitForRedis(`redis://127.0.0.1:${port}`);
  };
  await launchData(masterPort as number, null);
  await Promise.all(dataPorts.slice(1).map((p) => launchData(p, masterPort as number)));
  for (const port of sentinelPorts) {
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${TEST_MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${TEST_MASTER_NAME} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${TEST_MASTER_NAME} 10000`,
        `sentinel parallel-syncs ${TEST_MASTER_NAME} 1`,
        '',
      ].join('\n'),
    );
    procs.set(port, spawn('redis-sentinel', [conf, '--loglevel', 'warning'], { stdio: 'ignore' }));
    await waitForRedis(`redis://127.0.0.1:${port}`);
  }
  const alive = (p: number) => running(procs.get(p));
  const currentMaster = async (): Promise<number> => {
    for (const s of sentinelPorts) {
      const reply = await ask(s, (c) =>
        c.call('SENTINEL', 'get-master-addr-by-name', TEST_MASTER_NAME),
      ).catch(() => null);
      if (Array.isArray(reply)) return Number(reply[1]);
    }
    throw new Error('redis sentinel: no Sentinel names a master');
  };
  // Ready when every Sentinel sees the other two and every replica, and every replica is in sync.
  const ready = async () => {
    const master = await currentMaster();
    for (const s of sentinelPorts) {
      const info = (await ask(s, (c) => c.call('SENTINEL', 'master', TEST_MASTER_NAME))) as string[];
      const field = (name: string) => Number(info[info.indexOf(name) + 1]);
      if (field('num-other-sentinels') < 2 || field('num-slaves') < replicas) return false;
      if (field('port') !== master) return false;
    }
    for (const p of dataPorts) {
      if (p === master || !alive(p)) continue;
      const replication = (await ask(p, (c) => c.info('replication'))) as string;
      if (!replication.includes('master_link_status:up')) return false;
    }
    return true;
  };
  await until('the Sentinels agree on the master and see every replica', 30_000, ready);
  const clients: Redis[] = [];
  const sentinels = sentinelPorts.map((p) => `127.0.0.1:${p}`);
  const kill = (port: number) => killNow(procs.get(port));
  return {
    sentinels,
    masterName: TEST_MASTER_NAME,
    prefix: `fluke-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    masterPort: currentMaster,
    kill,
    signal: (port, sig) => {
      if (alive(port)) procs.get(port)?.kill(sig);
    },
    dataPorts,
    client: () => {
      const c = new Redis({
        sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
        name: TEST_MASTER_NAME,
        maxRetriesPerRequest: null,
      });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    failover: async (timeoutMs = 30_000) => {
      const killed = await currentMaster();
      await kill(killed);
      let promoted = killed;
      await until(`a replica replaced master ${killed}`, timeoutMs, async () => {
        promoted = await currentMaster();
        if (promoted === killed || !alive(promoted)) return false;
        const role = (await ask(promoted, (c) => c.info('replication'))) as string;
        return role.includes('role:master');
      });
      return { killed, promoted };
    },
    restart: async (port) => {
      const master = await currentMaster();
      await launchData(port, master === port ? null : master);
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await Promise.all([...procs.keys()].map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * What testkit/system.ts needs to run a whole Fluke on this quorum: a TestRedis stand-in (its
 * client() follows the master) and the `redis { }` lines naming the Sentinels. The url's
 * host:port is not used with Sentinels.
 */
export function sentinelRedis(s: TestRedisSentinel): { server: TestRedis; hcl: string } {
  const refuse = async () => {
    throw new Error('use the TestRedisSentinel handle to kill or restart its servers');
  };
  const server: TestRedis = {
    url: 'redis://127.0.0.1:1',
    port: 1,
    prefix: s.prefix,
    client: () => s.client(),
    kill: refuse,
    restart: refuse,
    signal: () => {
      throw new Error('use the TestRedisSentinel handle to signal its servers');
    },
    stop: () => s.stop(),
  };
  const list = s.sentinels.map((x) => JSON.stringify(x)).join(', ');
  return { server, hcl: `    sentinels   = [${list}]\n    master_name = "${s.masterName}"` };
}
