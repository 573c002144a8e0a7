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

export interface ValidateIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const USAGE = 'usage: fluke validate [DIR] [--glob GLOB] [--json]\n';

interface Options {
  dir: string;
  glob: string;
  json: boolean;
}

function parseArgs(argv: string[]): Options | string {
  const opts: Options = { dir: '.', glob: '**/*.fluke.hcl', json: false };
  let dirSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--json') opts.json = true;
    else if (arg === '--glob') {
      const value = argv[++i];
      if (value === undefined) return '--glob needs a pattern';
      opts.glob = value;
    } else if (arg.startsWith('--glob=')) opts.glob = arg.slice('--glob='.length);
    else if (arg === '-h' || arg === '--help') return '';
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else if (dirSeen) return `unexpected argument ${arg}`;
    else {
      opts.dir = arg;
      dirSeen = true;
    }
  }
  return opts;
}

/** Paths as the user can open them: under DIR as they typed it. */
function shown(dir: string, d: CompileDiagnostic): CompileDiagnostic {
  return dir === '.' ? d : { ...d, file: join(dir, d.file) };
}

export async function validate(argv: string[], io: ValidateIo): Promise<number> {
  const opts = parseArgs(argv);
  if (typeof opts === 'string') {
    if (opts === '') {
      io.stdout(USAGE);
      return 0;
    }
    io.stderr(`fluke validate: ${opts}\n${USAGE}`);
    return 2;
  }
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
  return validate(argv, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  });
}
