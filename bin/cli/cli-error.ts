/**
 * How the CLI fails. Every expected failure is a CliError carrying its exit code, so scripts can
 * tell "the server said no" from "the server is not there" without parsing messages
 * (docs/cli.md "Exit codes").
 */

export const EXIT = {
  OK: 0,
  /** The operation ran and failed: a task failed or timed out, a 404, a server error. */
  FAILURE: 1,
  /** Bad command line: unknown command or flag, missing argument. */
  USAGE: 2,
  /** The server could not be reached (refused, DNS, TLS, no answer in time). */
  UNREACHABLE: 3,
  /** The server refused the token (401, 403). */
  AUTH: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.FAILURE,
    /** The server's error code, when the server answered with one. */
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error: the message, then the command's usage text. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message, EXIT.USAGE);
    this.name = 'UsageError';
  }
}
