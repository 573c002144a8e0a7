/**
 * bench/reconcile.ts and its child processes (each a fork of bench/reconcile.ts with `--child`):
 * spawning, request/reply over the IPC channel, and stopping. bench/storm.ts and bench/recovery.ts
 * fork their own children with `forkBench`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type Msg = Record<string, unknown> & { type: string };

/** The children forked so far and still running (stopped together on exit). */
export const children = new Set<ChildProcess>();

const SCRIPT = fileURLToPath(new URL('./reconcile.ts', import.meta.url));

/** Forks a bench script (through tsx) with an IPC channel, kept in `children` until it exits. */
export function forkBench(script: string, childArgs: string[], execArgv: string[] = []): ChildProcess {
  const child = fork(script, childArgs, {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function spawnChild(childArgs: string[], execArgv: string[] = []): ChildProcess {
  return forkBench(SCRIPT, childArgs, execArgv);
}

export function waitFor(child: ChildProcess, type: string, timeoutMs: number): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${type}`));
    }, timeoutMs);
    const onMsg = (m: Msg) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited (${code}) while waiting for ${type}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

export async function ask(
  child: ChildProcess,
  message: Msg,
  reply: string,
  timeoutMs = 30_000,
): Promise<Msg> {
  const p = waitFor(child, reply, timeoutMs);
  child.send(message);
  return p;
}

/** SIGTERM (a graceful close lets a CPU profile be written), SIGKILL after 10 s. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
