/**
 * What bench/storm.ts reads from the running system: the simulators' storm counters summed, CPU
 * seconds per process, Redis command counts, and (`--monitor`) the Redis round trips one gateway
 * makes, counted with MONITOR on that gateway's own connections (found with `ss -tnp`).
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { ask } from './reconcile-ipc.js';
import { commandStats } from './reconcile-probes.js';
import type { StormCounters } from './storm-answer.js';

/** The simulators' storm counters summed, with what each reports besides. */
export interface FleetStats extends Omit<StormCounters, 'phase' | 'startedAt'> {
  pending: number;
  dropped: number;
  connected: number;
  unchecked: string[];
}

export async function fleetStats(sims: ChildProcess[]): Promise<FleetStats> {
  const all = await Promise.all(sims.map((s) => ask(s, { type: 'stats' }, 'stats', 60_000)));
  const sum = (k: string) => all.reduce((s, m) => s + Number(m[k] ?? 0), 0);
  const times = (k: string, f: (...v: number[]) => number) => {
    const v = all.map((m) => m[k]).filter((x): x is number => typeof x === 'number');
    return v.length ? f(...v) : null;
  };
  const merge = (k: string) => {
    const out: Record<string, number> = {};
    for (const m of all)
      for (const [g, n] of Object.entries((m[k] ?? {}) as Record<string, number>)) out[g] = (out[g] ?? 0) + n;
    return out;
  };
  return {
    registrations: sum('registrations'),
    byGateway: merge('byGateway'),
    firstRegisteredAt: times('firstRegisteredAt', Math.min),
    lastRegisteredAt: times('lastRegisteredAt', Math.max),
    agentsRegistered: sum('agentsRegistered'),
    agentsChecked: sum('agentsChecked'),
    lastCheckedAt: times('lastCheckedAt', Math.max),
    runs: sum('runs'),
    duplicates: sum('duplicates'),
    doubleApplies: sum('doubleApplies'),
    applies: sum('applies'),
    results: sum('results'),
    acked: sum('acked'),
    resent: sum('resent'),
    pending: sum('pending'),
    dropped: sum('dropped'),
    closes: sum('closes'),
    closeCodes: merge('closeCodes'),
    connected: sum('connected'),
    refusals: sum('refusals'),
    refusedUpgrades: merge('refusedUpgrades'),
    unchecked: all.flatMap((m) => (Array.isArray(m.unchecked) ? m.unchecked.map(String) : [])).slice(0, 5),
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

/** Redis commands since the last RESETSTAT (Lua's inner calls included, INFO/CONFIG excluded). */
export async function redisCommands(redis: Redis): Promise<{ total: number; top: Array<[string, number]> }> {
  const stats = commandStats(await redis.info('commandstats'));
  const rows = [...stats.entries()].filter(([k]) => k !== 'info' && k !== 'config' && k !== 'monitor');
  const total = rows.reduce((s, [, v]) => s + v.calls, 0);
  const top = rows
    .map(([k, v]): [string, number] => [k, v.calls])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8);
  return { total, top };
}

/** The local ports of `pid`'s TCP connections to `redisPort` (ss -tnp shows the owner). */
function redisPortsOf(pid: number, redisPort: number): Set<string> {
  const out = execFileSync('ss', ['-Htnp', 'dst', `127.0.0.1:${redisPort}`], { encoding: 'utf8' });
  const ports = new Set<string>();
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const local = line.trim().split(/\s+/)[3] ?? '';
    ports.add(local.slice(local.lastIndexOf(':') + 1));
  }
  return ports;
}

/**
 * MONITOR from now until `result()`: the commands each client address sent, Lua's inner calls
 * apart. `result(pid)` keeps the clients of that process: its round trips by command.
 */
export async function monitorRoundTrips(redis: Redis, redisPort: number) {
  const bySource = new Map<string, Map<string, number>>();
  const monitor = await redis.monitor();
  // Lines still arriving while it disconnects must not crash the bench.
  monitor.on('error', () => {});
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') return;
    const port = source.slice(source.lastIndexOf(':') + 1);
    const m = bySource.get(port) ?? new Map<string, number>();
    bySource.set(port, m);
    const name = (args[0] ?? '').toLowerCase();
    m.set(name, (m.get(name) ?? 0) + 1);
  });
  return {
    result(pid: number): { total: number; byCommand: Record<string, number> } {
      monitor.disconnect();
      const mine = redisPortsOf(pid, redisPort);
      const byCommand: Record<string, number> = {};
      let total = 0;
      for (const [port, m] of bySource) {
        if (!mine.has(port)) continue;
        for (const [k, n] of m) {
          byCommand[k] = (byCommand[k] ?? 0) + n;
          total += n;
        }
      }
      return { total, byCommand };
    },
  };
}
