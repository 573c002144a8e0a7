/**
 * What every API command shares: the common flags (`--server`, `-o`), the server URL and
 * token from flags and environment, and the process's streams behind a small interface so
 * commands can run in tests without a child process.
 */
import { ApiClient } from './api-client.js';
import { CliError, UsageError } from './cli-error.js';
import {
  type CommandLine,
  type CommandSpec,
  type Flag,
  readCommandLine,
  usageLines,
} from './command-line.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7071';

export type OutputFormat = 'table' | 'json';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Terminal width when stdout is a terminal; tables are fitted to it. */
  columns: number | null;
  now(): number;
}

export function processIo(): CliIo {
  // `fluke get events --limit 1000 | head`: the reader left, which is not an error worth a trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    columns: process.stdout.isTTY ? (process.stdout.columns ?? null) : null,
    now: () => Date.now(),
  };
}

/**
 * The process's stdout and stderr as they are, for the long-running commands (agent, server,
 * dev): unlike processIo(), a closed stdout must not quietly end a daemon.
 */
export const stdStreams: Pick<CliIo, 'stdout' | 'stderr'> = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export const COMMON_FLAGS: readonly Flag[] = [
  {
    name: 'server',
    value: 'URL',
    help: `Fluke's HTTP API (default $FLUKE_SERVER, else ${DEFAULT_SERVER})`,
  },
  { name: 'output', short: 'o', value: 'FMT', help: 'table (default) or json' },
];

const ENVIRONMENT = `environment:
  FLUKE_SERVER        the server URL when --server is not given
  FLUKE_API_TOKEN     sent as "Authorization: Bearer" on every request
`;

/** An API command's spec: its own flags, then the common ones and the environment it reads. */
export function apiCommand(spec: CommandSpec): CommandSpec {
  return { ...spec, flags: [...spec.flags, ...COMMON_FLAGS], footer: `${spec.footer ?? ''}${ENVIRONMENT}` };
}

export interface CommandContext {
  args: CommandLine;
  output: OutputFormat;
  server: string;
  client: ApiClient;
}

/**
 * Parses argv by `spec` (made with apiCommand); returns null when help was asked for (and
 * printed). Throws UsageError on a bad command line.
 */
export function commandContext(argv: readonly string[], spec: CommandSpec, io: CliIo): CommandContext | null {
  const args = readCommandLine(argv, spec, io.stdout);
  if (!args) return null;
  const usage = usageLines(spec);
  const output = args.flags.output ?? 'table';
  if (output !== 'table' && output !== 'json')
    throw new UsageError(`-o must be "table" or "json", not ${JSON.stringify(output)}`, usage);
  const server = serverUrl(args.flags.server, io.env, usage);
  const token = io.env.FLUKE_API_TOKEN?.trim() || null;
  return { args, output, server, client: new ApiClient({ server, token }) };
}

function serverUrl(flag: string | true | undefined, env: NodeJS.ProcessEnv, usage: string): string {
  const raw = (typeof flag === 'string' ? flag : env.FLUKE_SERVER?.trim()) || DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`server URL ${JSON.stringify(raw)} is not a URL (e.g. ${DEFAULT_SERVER})`, usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`server URL ${JSON.stringify(raw)} must start with http:// or https://`, usage);
  // Keep a path prefix (a server behind a reverse proxy at /fluke), drop the trailing slash.
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Exactly `n` positionals, or a usage error naming what is missing or extra. */
export function positionals(ctx: CommandContext, names: readonly string[], usage: string): string[] {
  const got = ctx.args.positionals;
  if (got.length < names.length) throw new UsageError(`missing ${names[got.length]}`, usage);
  if (got.length > names.length) throw new UsageError(`unexpected argument ${got[names.length]}`, usage);
  return got;
}

/** Prints `value` pretty-printed; returns exit code 0 so a command can `return printJson(…)`. */
export function printJson(io: CliIo, value: unknown): 0 {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  return 0;
}

/**
 * Runs a command body and turns expected failures into a message and an exit code: usage errors
 * print the usage text, everything else one `fluke <command>: …` line on stderr.
 */
export async function runCommand(
  io: Pick<CliIo, 'stderr'>,
  name: string,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`fluke ${name}: ${err.message}\n\n${err.usage}`);
      return err.exitCode;
    }
    if (err instanceof CliError) {
      io.stderr(`fluke ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
