/**
 * Argument checks shared by the manifest functions: each converts what HCL allows (a number where
 * a string is wanted, a numeric string where a number is) and names the function and argument
 * position when it cannot.
 */
import type { Budget } from './budget.js';
import { ExprError } from './expr-error.js';
import { formatNumber, isMap, typeName, type Value, type ValueMap } from './value.js';

/** One function: its arguments, and the budget it pays before building anything. */
export type Fn = (args: Value[], budget: Budget) => Value;

export function str(v: Value | undefined, fn: string, n: number): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return String(v);
  throw new ExprError(`${fn}(): argument ${n} must be a string, got ${typeName(v ?? null)}`);
}
export function num(v: Value | undefined, fn: string, n: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw new ExprError(`${fn}(): argument ${n} must be a number, got ${typeName(v ?? null)}`);
}
export function int(v: Value | undefined, fn: string, n: number): number {
  const x = num(v, fn, n);
  if (!Number.isInteger(x)) throw new ExprError(`${fn}(): argument ${n} must be a whole number`);
  return x;
}
export function list(v: Value | undefined, fn: string, n: number): Value[] {
  if (Array.isArray(v)) return v;
  throw new ExprError(`${fn}(): argument ${n} must be a list, got ${typeName(v ?? null)}`);
}
export function map(v: Value | undefined, fn: string, n: number): ValueMap {
  if (v !== undefined && isMap(v)) return v;
  throw new ExprError(`${fn}(): argument ${n} must be a map, got ${typeName(v ?? null)}`);
}
export function strings(v: Value | undefined, fn: string, n: number): string[] {
  return list(v, fn, n).map((x) => str(x, fn, n));
}
export function codePoints(s: string): string[] {
  return [...s];
}
