/** Whether a process still runs, read from /proc (Linux). */
import { readFileSync } from 'node:fs';

/** Gone, or a zombie nobody reaped yet: either way it runs no more. */
export function isDead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Dead within `withinMs`: a signal to a process group is delivered to each process on its own
 * schedule, so a grandchild may still show as running for a moment after the command returned.
 */
export async function diesSoon(pid: number, withinMs = 2000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (!isDead(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
