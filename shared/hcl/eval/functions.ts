/**
 * The functions manifests may call (docs/manifests.md lists them). Each one checks its argument
 * types, and anything that builds a collection or string pays the budget before building it.
 */
import type { Budget } from './budget.js';
import { ExprError } from './expr-error.js';
import {
  compareStrings,
  formatNumber,
  isMap,
  sortedKeys,
  typeName,
  type Value,
  type ValueMap,
  valuesEqual,
} from './value.js';

type Fn = (args: Value[], budget: Budget) => Value;

function str(v: Value | undefined, fn: string, n: number): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return String(v);
  throw new ExprError(`${fn}(): argument ${n} must be a string, got ${typeName(v ?? null)}`);
}
function num(v: Value | undefined, fn: string, n: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw new ExprError(`${fn}(): argument ${n} must be a number, got ${typeName(v ?? null)}`);
}
function int(v: Value | undefined, fn: string, n: number): number {
  const x = num(v, fn, n);
  if (!Number.isInteger(x)) throw new ExprError(`${fn}(): argument ${n} must be a whole number`);
  return x;
}
function list(v: Value | undefined, fn: string, n: number): Value[] {
  if (Array.isArray(v)) return v;
  throw new ExprError(`${fn}(): argument ${n} must be a list, got ${typeName(v ?? null)}`);
}
function map(v: Value | undefined, fn: string, n: number): ValueMap {
  if (v !== undefined && isMap(v)) return v;
  throw new ExprError(`${fn}(): argument ${n} must be a map, got ${typeName(v ?? null)}`);
}
function strings(v: Value | undefined, fn: string, n: number): string[] {
  return list(v, fn, n).map((x) => str(x, fn, n));
}
function codePoints(s: string): string[] {
  return [...s];
}

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

function jsonencode(v: Value, budget: Budget | null): string {
  const parts: string[] = [];
  let length = 0;
  const push = (s: string): void => {
    length += s.length;
    budget?.checkLength(length);
    parts.push(s);
  };
  const walk = (x: Value): void => {
    budget?.charge(1);
    if (Array.isArray(x)) {
      push('[');
      x.forEach((item, i) => {
        if (i > 0) push(',');
        walk(item);
      });
      push(']');
    } else if (isMap(x)) {
      push('{');
      sortedKeys(x).forEach((k, i) => {
        push(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`);
        walk(x.get(k) as Value);
      });
      push('}');
    } else push(JSON.stringify(x));
  };
  walk(v);
  return parts.join('');
}

function flatten(v: Value[], budget: Budget, out: Value[] = []): Value[] {
  for (const x of v) {
    budget.charge(1);
    if (Array.isArray(x)) flatten(x, budget, out);
    else out.push(x);
  }
  return out;
}

function replaceAll(s: string, sub: string, repl: string, budget: Budget): string {
  if (sub === '') return s;
  const count = s.split(sub).length - 1;
  budget.checkLength(s.length + count * (repl.length - sub.length));
  return s.split(sub).join(repl);
}

function minmax(args: Value[], fn: string, pick: (a: number, b: number) => number): number {
  if (args.length === 0) throw new ExprError(`${fn}(): needs at least one number`);
  return args.map((a, i) => num(a, fn, i + 1)).reduce(pick);
}

function range(args: Value[], budget: Budget): number[] {
  const [a, b, c] = args.map((x, i) => num(x, 'range', i + 1));
  const start = b === undefined ? 0 : (a ?? 0);
  const end = b === undefined ? (a ?? 0) : b;
  const step = c ?? (start <= end ? 1 : -1);
  if (step === 0) throw new ExprError('range(): step must not be zero');
  const count = Math.max(0, Math.ceil((end - start) / step));
  budget.charge(count);
  return Array.from({ length: count }, (_, i) => start + i * step);
}

const FUNCTIONS: Record<string, Fn> = {
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
  tostring: (a) => (a[0] === null ? null : str(a[0], 'tostring', 1)),
  tonumber: (a) => (a[0] === null ? null : num(a[0], 'tonumber', 1)),
  tobool: (a) => {
    const v = a[0] ?? null;
    if (v === null || typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw new ExprError(`tobool(): cannot convert ${typeName(v)} to bool`);
  },
  tolist: (a) => list(a[0], 'tolist', 1),
  length: (a) => {
    const v = a[0] ?? null;
    if (typeof v === 'string') return codePoints(v).length;
    if (Array.isArray(v)) return v.length;
    if (isMap(v)) return v.size;
    throw new ExprError(`length(): needs a string, list or map, got ${typeName(v)}`);
  },
  concat: (a, b) => {
    const out = a.flatMap((l, i) => list(l, 'concat', i + 1));
    b.charge(out.length);
    return out;
  },
  merge: (a, b) => {
    const out: ValueMap = new Map();
    a.forEach((m, i) => {
      if (m === null) return;
      for (const [k, v] of map(m, 'merge', i + 1)) out.set(k, v);
    });
    b.charge(out.size);
    return out;
  },
  contains: (a) => list(a[0], 'contains', 1).some((x) => valuesEqual(x, a[1] ?? null)),
  keys: (a) => sortedKeys(map(a[0], 'keys', 1)),
  values: (a) => {
    const m = map(a[0], 'values', 1);
    return sortedKeys(m).map((k) => m.get(k) as Value);
  },
  lookup: (a) => {
    const m = map(a[0], 'lookup', 1);
    const k = str(a[1], 'lookup', 2);
    if (m.has(k)) return m.get(k) as Value;
    if (a.length > 2) return a[2] ?? null;
    throw new ExprError(`lookup(): map has no key "${k}" and no default was given`);
  },
  coalesce: (a) => {
    const found = a.find((x) => x !== null && x !== '');
    if (found === undefined) throw new ExprError('coalesce(): every argument is null or empty');
    return found;
  },
  coalescelist: (a) => a.find((x, i) => list(x, 'coalescelist', i + 1).length > 0) ?? [],
  flatten: (a, b) => flatten(list(a[0], 'flatten', 1), b),
  distinct: (a, b) => {
    const out: Value[] = [];
    for (const x of list(a[0], 'distinct', 1)) {
      b.charge(out.length + 1);
      if (!out.some((y) => valuesEqual(x, y))) out.push(x);
    }
    return out;
  },
  compact: (a) => strings(a[0], 'compact', 1).filter((s) => s !== ''),
  sort: (a, b) => {
    const items = strings(a[0], 'sort', 1);
    b.charge(items.length * Math.ceil(Math.log2(items.length + 1)));
    return items.sort(compareStrings);
  },
  reverse: (a) => [...list(a[0], 'reverse', 1)].reverse(),
  slice: (a) => {
    const l = list(a[0], 'slice', 1);
    const [from, to] = [int(a[1], 'slice', 2), int(a[2], 'slice', 3)];
    if (from < 0 || to > l.length || from > to)
      throw new ExprError(`slice(): indexes ${from}..${to} out of range`);
    return l.slice(from, to);
  },
  element: (a) => {
    const l = list(a[0], 'element', 1);
    if (l.length === 0) throw new ExprError('element(): the list is empty');
    const i = int(a[1], 'element', 2);
    return l[((i % l.length) + l.length) % l.length] as Value;
  },
  index: (a) => {
    const i = list(a[0], 'index', 1).findIndex((x) => valuesEqual(x, a[1] ?? null));
    if (i < 0) throw new ExprError('index(): the value is not in the list');
    return i;
  },
  zipmap: (a) => {
    const [k, v] = [strings(a[0], 'zipmap', 1), list(a[1], 'zipmap', 2)];
    if (k.length !== v.length) throw new ExprError('zipmap(): the lists differ in length');
    return new Map(k.map((key, i) => [key, v[i] as Value]));
  },
  range,
  min: (a) => minmax(a, 'min', (x, y) => Math.min(x, y)),
  max: (a) => minmax(a, 'max', (x, y) => Math.max(x, y)),
  abs: (a) => Math.abs(num(a[0], 'abs', 1)),
  ceil: (a) => Math.ceil(num(a[0], 'ceil', 1)),
  floor: (a) => Math.floor(num(a[0], 'floor', 1)),
  jsonencode: (a, b) => jsonencode(a[0] ?? null, b),
  base64encode: (a, b) => {
    const s = str(a[0], 'base64encode', 1);
    b.checkLength(Math.ceil(s.length / 3) * 4 * 3);
    return Buffer.from(s, 'utf8').toString('base64');
  },
  base64decode: (a) => Buffer.from(str(a[0], 'base64decode', 1), 'base64').toString('utf8'),
};

export const FUNCTION_NAMES: readonly string[] = Object.keys(FUNCTIONS).sort();

export function callFunction(name: string, args: Value[], budget: Budget): Value {
  const fn = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
  if (!fn) throw new ExprError(`unknown function "${name}"`);
  budget.charge(args.length);
  const out = fn(args, budget);
  if (typeof out === 'string') budget.checkLength(out.length);
  return out;
}
