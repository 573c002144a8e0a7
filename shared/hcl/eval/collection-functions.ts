/** The list and map functions; each pays the budget for what it builds. */
import type { Budget } from './budget.js';
import { ExprError } from './expr-error.js';
import { codePoints, type Fn, int, list, map, num, str, strings } from './function-args.js';
import {
  compareStrings,
  isMap,
  sortedKeys,
  typeName,
  type Value,
  type ValueMap,
  valuesEqual,
} from './value.js';

function flatten(v: Value[], budget: Budget, out: Value[] = []): Value[] {
  for (const x of v) {
    budget.charge(1);
    if (Array.isArray(x)) flatten(x, budget, out);
    else out.push(x);
  }
  return out;
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

export const COLLECTION_FUNCTIONS: Record<string, Fn> = {
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
};
