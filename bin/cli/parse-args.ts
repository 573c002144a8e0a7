/**
 * A small, strict command-line parser for the API commands. Strict because a mistyped flag that
 * is silently ignored (`--agnet web-01`) would list everything and look like an answer.
 * Accepts `--flag value`, `--flag=value`, `-f value`, `-fvalue` (`-ojson`, as kubectl does) and
 * `--` to end the flags.
 */

export interface FlagSpec {
  /** Long name without dashes: `output` for `--output`. */
  name: string;
  /** One letter, without the dash: `o` for `-o`. */
  short?: string;
  /** Takes a value (`--limit 20`) or is a switch (`--follow`). */
  value: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  /** By long name: the value for value flags (last one wins), `true` for switches. */
  flags: Record<string, string | true>;
}

export function parseArgs(
  argv: readonly string[],
  specs: readonly FlagSpec[],
): ParsedArgs | { error: string } {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const out: ParsedArgs = { positionals: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-' || !arg.startsWith('-')) {
      out.positionals.push(arg);
      continue;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq >= 0) inline = arg.slice(eq + 1);
      spec = byLong.get(name);
    } else {
      spec = byShort.get(arg.slice(1, 2));
      const rest = arg.slice(2);
      if (rest !== '') inline = rest.startsWith('=') ? rest.slice(1) : rest;
    }
    if (!spec) return { error: `unknown flag ${arg.split('=')[0]}` };
    if (!spec.value) {
      if (inline !== undefined) return { error: `${flagName(spec)} takes no value` };
      out.flags[spec.name] = true;
      continue;
    }
    if (inline === undefined) {
      const next = argv[i + 1];
      if (next === undefined) return { error: `${flagName(spec)} needs a value` };
      inline = next;
      i++;
    }
    out.flags[spec.name] = inline;
  }
  return out;
}

function flagName(spec: FlagSpec): string {
  return spec.short ? `-${spec.short}/--${spec.name}` : `--${spec.name}`;
}
