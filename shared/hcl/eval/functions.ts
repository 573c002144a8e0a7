/**
 * The functions manifests may call (docs/manifests.md lists them). Each one checks its argument
 * types, and anything that builds a collection or string pays the budget before building it.
 * The families live beside this registry: string-, collection- and encoding-functions.
 */
import type { Budget } from './budget.js';
import { COLLECTION_FUNCTIONS } from './collection-functions.js';
import { ENCODING_FUNCTIONS } from './encoding-functions.js';
import { ExprError } from './expr-error.js';
import { type Fn, list, num, str } from './function-args.js';
import { STRING_FUNCTIONS } from './string-functions.js';
import { typeName, type Value } from './value.js';

function minmax(args: Value[], fn: string, pick: (a: number, b: number) => number): number {
  if (args.length === 0) throw new ExprError(`${fn}(): needs at least one number`);
  return args.map((a, i) => num(a, fn, i + 1)).reduce(pick);
}

const CONVERSION_FUNCTIONS: Record<string, Fn> = {
  tostring: (a) => (a[0] === null ? null : str(a[0], 'tostring', 1)),
  tonumber: (a) => (a[0] === null ? null : num(a[0], 'tonumber', 1)),
  tobool: (a) => {
    const v = a[0] ?? null;
    if (v === null || typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw new ExprError(`tobool(): cannot convert ${typeName(v)} to bool`);
  },
  tolist: (a) => list(a[0], 'tolist', 1),
};

const NUMBER_FUNCTIONS: Record<string, Fn> = {
  min: (a) => minmax(a, 'min', (x, y) => Math.min(x, y)),
  max: (a) => minmax(a, 'max', (x, y) => Math.max(x, y)),
  abs: (a) => Math.abs(num(a[0], 'abs', 1)),
  ceil: (a) => Math.ceil(num(a[0], 'ceil', 1)),
  floor: (a) => Math.floor(num(a[0], 'floor', 1)),
};

const FUNCTIONS: Record<string, Fn> = {
  ...STRING_FUNCTIONS,
  ...CONVERSION_FUNCTIONS,
  ...COLLECTION_FUNCTIONS,
  ...NUMBER_FUNCTIONS,
  ...ENCODING_FUNCTIONS,
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
