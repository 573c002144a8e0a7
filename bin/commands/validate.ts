/**
 * `fluke validate [DIR] [--glob G] [--json]`: compiles manifests offline. Errors go to stderr as
 * `file:line:col: message` (exit 1); warnings as `file:line: warning: message` (exit 0);
 * `--json` prints the compiled desired state to stdout.
 */
import { join } from 'node:path';
import {
  type CompileDiagnostic,
  formatDiagnostic,
  ManifestCompiler,
  ManifestReadError,
  readManifestDir,
} from '../../shared/manifest/compile.js';
import { runCommand, stdStreams } from '../cli/cli-context.js';
import { UsageError } from '../cli/cli-error.js';
import { readCommandLine, stringFlag, usageLines } from '../cli/command-line.js';

export interface ValidateIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const SPEC = {
  name: 'validate',
  synopsis: '[DIR] [flags]',
  about: `Compiles the manifests under DIR (default: the current directory) offline, as the
reconciler would. Errors go to stderr as file:line:col: message (exit 1), warnings as
file:line: warning: message (exit 0).`,
  flags: [
    { name: 'glob', value: 'GLOB', default: '**/*.fluke.hcl', help: 'which files under DIR are manifests' },
    { name: 'json', help: 'print the compiled desired state as JSON on stdout' },
  ],
};

interface Options {
  dir: string;
  glob: string;
  json: boolean;
}

/** The options, or null when help was asked for (and printed). */
function options(argv: string[], io: ValidateIo): Options | null {
  const line = readCommandLine(argv, SPEC, io.stdout);
  if (!line) return null;
  const [dir = '.', extra] = line.positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}`, usageLines(SPEC));
  return { dir, glob: stringFlag(line, 'glob') as string, json: line.flags.json === true };
}

/** Paths as the user can open them: under DIR as they typed it. */
function shown(dir: string, d: CompileDiagnostic): CompileDiagnostic {
  return dir === '.' ? d : { ...d, file: join(dir, d.file) };
}

export function validate(argv: string[], io: ValidateIo): Promise<number> {
  return runCommand(io, 'validate', async () => {
    const opts = options(argv, io);
    return opts ? compileAndReport(opts, io) : 0;
  });
}

async function compileAndReport(opts: Options, io: ValidateIo): Promise<number> {
  let files: Awaited<ReturnType<typeof readManifestDir>>;
  try {
    files = await readManifestDir(opts.dir, opts.glob);
  } catch (err) {
    if (!(err instanceof ManifestReadError)) throw err;
    for (const d of err.diagnostics) io.stderr(`${formatDiagnostic(shown(opts.dir, d))}\n`);
    io.stderr(`fluke validate: ${err.message}\n`);
    return 1;
  }
  if (files.length === 0) {
    io.stderr(`fluke validate: no manifest files matching ${opts.glob} under ${opts.dir}\n`);
    return 1;
  }
  const result = await new ManifestCompiler().compile(files);
  for (const d of result.errors) io.stderr(`${formatDiagnostic(shown(opts.dir, d))}\n`);
  for (const w of result.warnings) {
    io.stderr(
      `${formatDiagnostic(shown(opts.dir, { file: w.file, line: w.line, message: w.message }), 'warning')}\n`,
    );
  }
  const counts = `${result.state.tasks.length} task(s) in ${files.length} file(s)`;
  if (result.errors.length > 0) {
    io.stderr(`fluke validate: ${result.errors.length} error(s), ${result.warnings.length} warning(s)\n`);
    return 1;
  }
  if (opts.json) io.stdout(`${JSON.stringify({ tasks: result.state.tasks }, null, 2)}\n`);
  else io.stdout(`${opts.dir}: ${counts}, ${result.warnings.length} warning(s), no errors\n`);
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return validate(argv, stdStreams);
}
