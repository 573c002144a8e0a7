/**
 * The port every executor implements. An executor turns one step into commands on the host; the
 * runner decides when to check and when to apply (see ../outcome.ts), never the executor.
 */
import type { Logger } from '../../shared/logger.js';
import type { Step } from '../../shared/types.js';

export interface ExecContext {
  /** Aborted on cancel or agent shutdown: running commands are killed (whole process group). */
  signal: AbortSignal;
  /** `agent.execution.command_timeout`: per command, not per step. */
  timeoutMs: number;
  /** Live output, one line at a time (without the newline). Best effort; may be dropped. */
  onLine(stream: 'stdout' | 'stderr', line: string): void;
  logger: Logger;
}

export interface ExecResult {
  /** Exit code of the (last) command; null when it did not run or was killed by a signal. */
  exitCode: number | null;
  /** Tail of the combined output, capped. */
  output: string;
  timedOut: boolean;
  /** Why nothing meaningful could be run or judged (bad input, spawn failure, cancel); null if none. */
  error: string | null;
}

export interface Executor<S extends Step = Step> {
  /** Read-only: exit 0 means the step holds. */
  check(step: S, ctx: ExecContext): Promise<ExecResult>;
  /** Makes the step hold; the runner re-checks afterwards. */
  apply(step: S, ctx: ExecContext): Promise<ExecResult>;
}

/** One executor per step type, typed so the runner cannot hand a systemd step to the shell. */
export type Executors = { [K in Step['type']]: Executor<Extract<Step, { type: K }>> };

export function errorResult(error: string, output = ''): ExecResult {
  return { exitCode: null, output, timedOut: false, error };
}
