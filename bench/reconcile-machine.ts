/**
 * What bench/reconcile.ts reads from the machine itself (Linux /proc): a process's CPU time with
 * the children it waited for (git), steal time over a phase, the CPU clock, the open-file limit.
 * These say whether a CPU-s figure from one run compares with another's.
 */
import { readFileSync } from 'node:fs';

/**
 * CPU seconds (user + system) a process has used so far, its worker threads (the HCL parser
 * pool) and the children it has waited for (git fetch, git cat-file) included.
 */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime (fields 14–17, counted from 1 with pid and comm).
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

/** The aggregate `cpu` line of /proc/stat, in clock ticks. */
export interface CpuTicks {
  total: number;
  idle: number;
  steal: number;
}

export function cpuTicks(): CpuTicks {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user).
    const total = v.slice(0, 8).reduce((s, x) => s + x, 0);
    return { total, idle: (v[3] ?? 0) + (v[4] ?? 0), steal: v[7] ?? 0 };
  } catch {
    return { total: 0, idle: 0, steal: 0 };
  }
}

/** Between two readings: % of all CPU time stolen by the hypervisor, % idle. */
export function cpuShares(a: CpuTicks, b: CpuTicks): { stealPct: number; idlePct: number } {
  const total = b.total - a.total;
  if (total <= 0) return { stealPct: 0, idlePct: 0 };
  return {
    stealPct: ((b.steal - a.steal) * 100) / total,
    idlePct: ((b.idle - a.idle) * 100) / total,
  };
}

/** The mean `cpu MHz` over the cores now (what the kernel shows a guest; 0 when absent). */
export function cpuMhz(): number {
  try {
    const mhz = [...readFileSync('/proc/cpuinfo', 'utf8').matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) =>
      Number(m[1]),
    );
    return mhz.length ? mhz.reduce((s, x) => s + x, 0) / mhz.length : 0;
  } catch {
    return 0;
  }
}

/** This process's open-file limit (soft / hard), from /proc/self/limits. */
export function openFileLimit(): { soft: number; hard: number } {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(
      readFileSync('/proc/self/limits', 'utf8'),
    );
    const n = (s: string | undefined) => (s === 'unlimited' || s === undefined ? Infinity : Number(s));
    return { soft: n(m?.[1]), hard: n(m?.[2]) };
  } catch {
    return { soft: Infinity, hard: Infinity };
  }
}

/**
 * A fixed single-threaded JS workload (JSON and string hashing over result-like objects, what
 * the reconciler does most), timed in this process's CPU time: how fast one CPU-second is on
 * this machine right now. The best of 3; lower is faster. Divide a CPU-ms figure by it to
 * compare runs from different machines.
 */
export function calibrationCpuMs(): number {
  const item = {
    type: 'task_result',
    result_id: 's0abc-1f',
    instruction_id: 'i-0123456789abcdef',
    execution_id: 'e-0123456789abcdef',
    task: 'bench_07',
    outcome: 'satisfied',
    steps: [{ step: 'step', type: 'shell', outcome: 'satisfied', exit_code: 0, output_tail: '' }],
  };
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const start = process.cpuUsage();
    let h = 0;
    for (let i = 0; i < 40_000; i++) {
      const text = JSON.stringify({ ...item, result_id: `r${i}` });
      const back = JSON.parse(text) as { task: string; result_id: string };
      for (let j = 0; j < back.result_id.length; j++)
        h = Math.imul(h ^ back.result_id.charCodeAt(j), 16777619);
    }
    const used = process.cpuUsage(start);
    if (h === 42) best = -1; // keeps the loop observable
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return best;
}
