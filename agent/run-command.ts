/**
 * Runs one command without a shell string: argv only, stdin closed, its own process group, a
 * timeout and a cancel signal that kill the whole group (SIGTERM, then SIGKILL after a grace
 * period), live output split into lines, and only the tail of the output kept.
 */
import { spawn } from 'node:child_process';
import type { ExecResult } from './executors/executor.js';
import { TailBuffer } from './tail-buffer.js';

export interface RunCommandOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal: AbortSignal;
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Bytes of combined output kept for the result. */
  tailBytes?: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** Longest line handed to onLine; longer lines are cut (the tail still holds the bytes). */
  maxLineLength?: number;
}

/** How long to wait for stdout/stderr to close after the process exited (a backgrounded daemon may hold them). */
const STREAM_DRAIN_MS = 500;

export function runCommand(
  file: string,
  args: readonly string[],
  opts: RunCommandOptions,
): Promise<ExecResult> {
  const tail = new TailBuffer(opts.tailBytes ?? 4096);
  const maxLine = opts.maxLineLength ?? 4096;
  if (opts.signal.aborted)
    return Promise.resolve({ exitCode: null, output: '', timedOut: false, error: abortReason(opts.signal) });

  return new Promise((resolve) => {
    let timedOut = false;
    let cancelled = false;
    let spawnError: string | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    // detached: the child leads a new process group, so kill(-pid) reaches every grandchild too.
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });

    if (child.pid !== undefined) liveGroups.add(child.pid);
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      signalGroup(child.pid, 'SIGTERM');
      // Unref'd: once the leader is gone it still reaps stragglers that ignored SIGTERM, but it
      // never keeps a shutting-down agent alive.
      if (killTimer === undefined)
        killTimer = setTimeout(() => {
          if (child.pid === undefined) return;
          signalGroup(child.pid, 'SIGKILL');
          liveGroups.delete(child.pid);
        }, opts.killGraceMs ?? 5000).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    const onAbort = (): void => {
      cancelled = true;
      killGroup();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });

    const out = lineSplitter('stdout', tail, opts.onLine, maxLine);
    const err = lineSplitter('stderr', tail, opts.onLine, maxLine);
    child.stdout.on('data', out.data);
    child.stderr.on('data', err.data);

    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A group that was sent SIGTERM stays listed until its SIGKILL: stragglers may remain.
      if (child.pid !== undefined && killTimer === undefined) liveGroups.delete(child.pid);
      opts.signal.removeEventListener('abort', onAbort);
      out.end();
      err.end();
      let error = spawnError;
      if (!error && cancelled) error = abortReason(opts.signal);
      if (!error && timedOut) error = `timed out after ${opts.timeoutMs} ms; process group killed`;
      if (!error && sig) error = `killed by ${sig}`;
      resolve({ exitCode: code, output: tail.toString(), timedOut, error });
    };

    child.on('error', (e) => {
      spawnError = `cannot run ${file}: ${e.message}`;
      finish(null, null);
    });
    child.on('exit', (code, sig) => {
      // Wait for the pipes to flush, but not for a daemon the command left running with them open.
      const streams = [child.stdout, child.stderr].filter((s) => !s.closed);
      if (streams.length === 0) {
        finish(code, sig);
        return;
      }
      let open = streams.length;
      const done = (): void => {
        if (--open === 0) finish(code, sig);
      };
      for (const s of streams) s.once('close', done);
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, sig);
      }, STREAM_DRAIN_MS).unref();
    });
  });
}

/** Keeps every chunk in the tail and hands complete lines (cut at maxLine) to onLine. */
function lineSplitter(
  stream: 'stdout' | 'stderr',
  tail: TailBuffer,
  onLine: RunCommandOptions['onLine'],
  maxLine: number,
): { data(chunk: Buffer): void; end(): void } {
  let partial = '';
  return {
    data(chunk: Buffer): void {
      tail.push(chunk);
      if (!onLine) return;
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      // A line without a newline for ages is emitted in pieces rather than buffered forever.
      if (partial.length > maxLine) {
        lines.push(partial);
        partial = '';
      }
      for (const line of lines) onLine(stream, line.length > maxLine ? `${line.slice(0, maxLine)}…` : line);
    },
    end(): void {
      if (partial && onLine) onLine(stream, partial.slice(0, maxLine));
      partial = '';
    },
  };
}

/** Process groups of commands still running (or sent SIGTERM and not yet SIGKILL). */
const liveGroups = new Set<number>();

/**
 * SIGKILL every command's process group at once: for an agent whose shutdown deadline passed,
 * so nothing it started outlives it.
 */
export function killAllCommandGroups(): number {
  const count = liveGroups.size;
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
  liveGroups.clear();
  return count;
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return `cancelled: ${r.message}`;
  return typeof r === 'string' ? `cancelled: ${r}` : 'cancelled';
}
