/**
 * Bounded shutdown for every long-running `fluke` process: the first SIGTERM/SIGINT starts the
 * graceful steps under one deadline; a second one, or the deadline passing, ends the process at
 * once with a non-zero code, after logging what was still pending. Redis unreachable or frozen
 * must not keep a process alive (BullMQ's close() and ioredis' quit() wait for replies).
 */

/** What shutdown logs through: a pino logger, or `fluke dev`'s console lines. */
export interface ShutdownLogger {
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  flush?(): void;
}

/** Exit code when the deadline passed with steps still pending. */
export const EXIT_DEADLINE = 1;

const SIGNAL_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** One graceful step, named for the log line that lists what was still pending. */
export interface ShutdownStep {
  what: string;
  run(): Promise<void> | void;
}

/** Records which named steps are running, so a passed deadline can say what hung. */
export class StepTracker {
  private readonly running = new Set<string>();

  async step(what: string, run: () => Promise<void> | void, logger?: ShutdownLogger): Promise<void> {
    this.running.add(what);
    try {
      await run();
    } catch (err) {
      logger?.warn(
        { step: what, err: err instanceof Error ? err.message : String(err) },
        'shutdown step failed',
      );
    } finally {
      this.running.delete(what);
    }
  }

  pending(): string[] {
    return [...this.running];
  }
}

/** Resolves with the signal's name on the first SIGTERM/SIGINT. */
export function firstStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(signal);
    };
    const onTerm = on('SIGTERM');
    const onInt = on('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}

export interface BoundedShutdownOptions {
  logger: ShutdownLogger;
  timeoutMs: number;
  /** Runs the graceful steps; reports each through the tracker. */
  graceful(tracker: StepTracker): Promise<void>;
  /** Last resort once the deadline passed: drop connections without waiting (disconnect()). */
  force?(): void;
  /** Ends the process (process.exit in production; tests may replace it). */
  exit?(code: number): void;
}

/**
 * Runs `graceful` under one deadline, with a second SIGTERM/SIGINT ending the process at once.
 * Resolves 0 when everything finished in time. If the deadline passes — or the process is still
 * alive when it passes, held by a handle nothing closed — logs what was pending and exits non-zero.
 */
export async function boundedShutdown(o: BoundedShutdownOptions): Promise<number> {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  const tracker = new StepTracker();
  const flush = () => {
    try {
      o.logger.flush?.();
    } catch {
      // nothing more to do on the way out
    }
  };
  const again = (signal: NodeJS.Signals) => {
    o.logger.warn({ signal, pending: tracker.pending() }, 'second signal: exiting now');
    flush();
    exit(SIGNAL_CODES[signal] ?? 1);
  };
  const onTerm = () => again('SIGTERM');
  const onInt = () => again('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);

  let finished = false;
  const deadline = setTimeout(() => {
    const pending = tracker.pending();
    if (finished) {
      o.logger.error(
        { timeout_ms: o.timeoutMs },
        'shutdown deadline passed: something still holds the process',
      );
    } else {
      o.logger.error(
        { timeout_ms: o.timeoutMs, pending },
        'shutdown deadline passed: exiting with steps pending',
      );
    }
    try {
      o.force?.();
    } catch {
      // exiting anyway
    }
    flush();
    exit(EXIT_DEADLINE);
  }, o.timeoutMs);
  // Once the graceful steps are done the timer must not keep the process alive by itself, but it
  // still fires if anything else does.
  await o.graceful(tracker).catch((err: unknown) => {
    o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
  });
  finished = true;
  deadline.unref();
  return 0;
}
