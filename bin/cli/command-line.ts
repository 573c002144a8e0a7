/**
 * Every `fluke` command's flags: one spec per command drives both the parsing (node:util
 * parseArgs) and the `--help` text, so the two cannot disagree. Strict, because a mistyped flag
 * that is silently ignored (`--agnet web-01`) would list everything and look like an answer.
 * Accepts `--flag value`, `--flag=value`, `-f value`, `-fvalue` and `-f=value` (`-ojson`, as
 * kubectl does), and `--` to end the flags.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './cli-error.js';

export interface Flag {
  /** Long name without dashes: `output` for `--output`. */
  name: string;
  /** One letter, without the dash: `o` for `-o`. */
  short?: string;
  /** The value's placeholder in the help (`URL`); a flag without one is a switch. */
  value?: string;
  /** The value when the flag is not given; the help shows it. */
  default?: string;
  /** The help line; `\n` starts a continuation line. */
  help: string;
}

export interface CommandSpec {
  /** The subcommand: `get` for `fluke get`. */
  name: string;
  /** What follows `fluke <name>` in the usage line: arguments and `[flags]`. */
  synopsis: string;
  /** Text between the usage line and the flags: what the command does, its arguments. */
  about?: string;
  flags: readonly Flag[];
  /** Text after the flags (environment variables). */
  footer?: string;
}

export interface CommandLine {
  positionals: string[];
  /** By long name: the value of value flags (the last one given, else the default), `true` for switches. */
  flags: Record<string, string | true>;
}

const HELP_FLAG: Flag = { name: 'help', short: 'h', help: 'this text' };

/** `usage: fluke get RESOURCE [flags]` and where to find more: what follows a usage error. */
export function usageLines(spec: CommandSpec): string {
  return `usage: fluke ${spec.name} ${spec.synopsis}\nRun "fluke ${spec.name} --help" for its flags.\n`;
}

export function helpText(spec: CommandSpec): string {
  const flags = [...spec.flags, HELP_FLAG];
  const labels = flags.map(
    (f) => `${f.short ? `-${f.short}, ` : ''}--${f.name}${f.value ? ` ${f.value}` : ''}`,
  );
  const width = Math.max(18, ...labels.map((l) => l.length)) + 2;
  const rows = flags.map((f, i) => {
    const help = f.default === undefined ? f.help : `${f.help} (default ${f.default})`;
    const [first, ...more] = help.split('\n');
    return [
      `  ${(labels[i] as string).padEnd(width)}${first}`,
      ...more.map((m) => `${' '.repeat(width + 2)}${m}`),
    ]
      .join('\n')
      .trimEnd();
  });
  const about = spec.about ? `\n${spec.about.trimEnd()}\n` : '';
  const footer = spec.footer ? `${spec.footer.trimEnd()}\n` : '';
  return `usage: fluke ${spec.name} ${spec.synopsis}\n${about}flags:\n${rows.join('\n')}\n${footer}`;
}

/**
 * Parses `argv` by `spec`. Returns null when `-h`/`--help` was given (and the help went to
 * `out`); throws a UsageError naming the problem for an unknown flag, a missing value or a value
 * given to a switch.
 */
export function readCommandLine(
  argv: readonly string[],
  spec: CommandSpec,
  out: (text: string) => void,
): CommandLine | null {
  const flags = [...spec.flags, HELP_FLAG];
  const byName = new Map(flags.map((f) => [f.name, f]));
  // Not strict: parseArgs' own errors are stack-trace material ("ERR_PARSE_ARGS_UNKNOWN_OPTION")
  // and it refuses `--server --odd-but-a-value`; the tokens are checked below instead.
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      flags.map((f) => [
        f.name,
        {
          type: f.value ? ('string' as const) : ('boolean' as const),
          ...(f.short ? { short: f.short } : {}),
        },
      ]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    out(helpText(spec));
    return null;
  }
  const usage = usageLines(spec);
  const line: CommandLine = { positionals: [], flags: {} };
  for (const f of spec.flags) if (f.default !== undefined) line.flags[f.name] = f.default;
  for (const token of tokens) {
    if (token.kind === 'positional') line.positionals.push(token.value);
    if (token.kind !== 'option') continue;
    const flag = byName.get(token.name);
    if (!flag) throw new UsageError(`unknown flag ${token.rawName}`, usage);
    if (!flag.value) {
      if (token.value !== undefined) throw new UsageError(`${flagName(flag)} takes no value`, usage);
      line.flags[flag.name] = true;
    } else if (token.value === undefined) {
      throw new UsageError(`${flagName(flag)} needs a value`, usage);
    } else {
      // `-o=json`: parseArgs keeps the `=` of a short flag's inline value.
      const inlineShort = token.inlineValue && !token.rawName.startsWith('--');
      line.flags[flag.name] = inlineShort && token.value.startsWith('=') ? token.value.slice(1) : token.value;
    }
  }
  return line;
}

function flagName(flag: Flag): string {
  return flag.short ? `-${flag.short}/--${flag.name}` : `--${flag.name}`;
}

/** A string flag's value; undefined for a switch or a flag not given (and without a default). */
export function stringFlag(line: CommandLine, name: string): string | undefined {
  const value = line.flags[name];
  return typeof value === 'string' ? value : undefined;
}
