/** The string functions, `format` with its verbs among them. */
import type { Budget } from './budget.js';
import { jsonencode } from './encoding-functions.js';
import { ExprError } from './expr-error.js';
import { codePoints, type Fn, int, num, str, strings } from './function-args.js';
import { formatNumber, type Value } from './value.js';

function formatOne(
  verb: string,
  arg: Value | undefined,
  flags: string,
  precision: string | undefined,
): string {
  if (arg === undefined) throw new ExprError('format(): not enough arguments for the format string');
  switch (verb) {
    case 's':
      return str(arg, 'format', 2);
    case 'd':
      return formatNumber(Math.trunc(num(arg, 'format', 2)));
    case 'f':
      return num(arg, 'format', 2).toFixed(precision === undefined ? 6 : Math.min(Number(precision), 100));
    case 'x':
      return Math.trunc(num(arg, 'format', 2)).toString(16);
    case 't':
      if (typeof arg !== 'boolean') throw new ExprError('format(): %t needs a bool');
      return String(arg);
    case 'q':
      return JSON.stringify(str(arg, 'format', 2));
    case 'v':
      return typeof arg === 'string' || typeof arg === 'number' || typeof arg === 'boolean'
        ? str(arg, 'format', 2)
        : jsonencode(arg, null);
    default:
      throw new ExprError(`format(): unsupported verb %${flags}${verb} (use %s %d %f %x %t %q %v %%)`);
  }
}

function format(args: Value[], budget: Budget): string {
  const spec = str(args[0], 'format', 1);
  let next = 1;
  let out = '';
  const re = /%(-?)(0?)([0-9]*)(?:\.([0-9]+))?([a-zA-Z%])/g;
  let last = 0;
  for (let m = re.exec(spec); m; m = re.exec(spec)) {
    const [whole, left, zero, width, precision, verb] = m;
    let piece = verb === '%' ? '%' : formatOne(verb ?? '', args[next++], `${left}${zero}${width}`, precision);
    const w = Number(width || 0);
    budget.checkLength(out.length + w + piece.length);
    if (piece.length < w) piece = left ? piece.padEnd(w) : piece.padStart(w, zero ? '0' : ' ');
    out += spec.slice(last, m.index) + piece;
    last = m.index + whole.length;
  }
  if (next < args.length) throw new ExprError('format(): too many arguments for the format string');
  return out + spec.slice(last);
}

function replaceAll(s: string, sub: string, repl: string, budget: Budget): string {
  if (sub === '') return s;
  const count = s.split(sub).length - 1;
  budget.checkLength(s.length + count * (repl.length - sub.length));
  return s.split(sub).join(repl);
}

export const STRING_FUNCTIONS: Record<string, Fn> = {
  lower: (a) => str(a[0], 'lower', 1).toLowerCase(),
  upper: (a) => str(a[0], 'upper', 1).toUpperCase(),
  title: (a) =>
    str(a[0], 'title', 1).replace(
      /(^|[^\p{L}\p{N}'])(\p{L})/gu,
      (_, p: string, c: string) => p + c.toUpperCase(),
    ),
  trimspace: (a) => str(a[0], 'trimspace', 1).trim(),
  trim: (a) => {
    const s = codePoints(str(a[0], 'trim', 1));
    const cut = new Set(codePoints(str(a[1], 'trim', 2)));
    let i = 0;
    let j = s.length;
    while (i < j && cut.has(s[i] as string)) i++;
    while (j > i && cut.has(s[j - 1] as string)) j--;
    return s.slice(i, j).join('');
  },
  trimprefix: (a) => {
    const [s, p] = [str(a[0], 'trimprefix', 1), str(a[1], 'trimprefix', 2)];
    return s.startsWith(p) ? s.slice(p.length) : s;
  },
  trimsuffix: (a) => {
    const [s, p] = [str(a[0], 'trimsuffix', 1), str(a[1], 'trimsuffix', 2)];
    return p !== '' && s.endsWith(p) ? s.slice(0, -p.length) : s;
  },
  chomp: (a) => str(a[0], 'chomp', 1).replace(/(?:\r?\n)+$/, ''),
  replace: (a, b) => replaceAll(str(a[0], 'replace', 1), str(a[1], 'replace', 2), str(a[2], 'replace', 3), b),
  split: (a, b) => {
    const parts = str(a[1], 'split', 2).split(str(a[0], 'split', 1));
    b.charge(parts.length);
    return parts;
  },
  join: (a, b) => {
    const sep = str(a[0], 'join', 1);
    const items = a.slice(1).flatMap((l, i) => strings(l, 'join', i + 2));
    b.checkLength(items.reduce((n, s) => n + s.length + sep.length, 0));
    return items.join(sep);
  },
  format,
  substr: (a) => {
    const s = codePoints(str(a[0], 'substr', 1));
    const offset = int(a[1], 'substr', 2);
    const length = int(a[2], 'substr', 3);
    const from = offset < 0 ? Math.max(0, s.length + offset) : offset;
    return s.slice(from, length < 0 ? undefined : from + length).join('');
  },
  startswith: (a) => str(a[0], 'startswith', 1).startsWith(str(a[1], 'startswith', 2)),
  endswith: (a) => str(a[0], 'endswith', 1).endsWith(str(a[1], 'endswith', 2)),
  strcontains: (a) => str(a[0], 'strcontains', 1).includes(str(a[1], 'strcontains', 2)),
  strrev: (a) =>
    codePoints(str(a[0], 'strrev', 1))
      .reverse()
      .join(''),
  indent: (a, b) => {
    const pad = ' '.repeat(Math.max(0, Math.min(int(a[0], 'indent', 1), 1024)));
    return replaceAll(str(a[1], 'indent', 2), '\n', `\n${pad}`, b);
  },
};
