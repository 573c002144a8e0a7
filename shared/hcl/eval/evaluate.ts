/** Evaluates an expression tree against locals and for-expression variables. */
import type { BinaryOp, Expr } from './ast.js';
import type { Budget } from './budget.js';
import { ExprError } from './expr-error.js';
import { callFunction } from './functions.js';
import {
  formatNumber,
  isMap,
  sortedKeys,
  typeName,
  type Value,
  type ValueMap,
  valuesEqual,
} from './value.js';

export interface EvalContext {
  budget: Budget;
  /** The value of `local.<name>`; throws ExprError for an unknown or failed local. */
  local(name: string): Value;
}

/** For-expression variables, innermost first. */
type Scope = { name: string; value: Value; parent: Scope | null } | null;

function lookup(scope: Scope, name: string): { value: Value } | null {
  for (let s = scope; s; s = s.parent) if (s.name === name) return { value: s.value };
  return null;
}

/** A value as template text: strings, numbers and bools only (HCL refuses the rest). */
export function toText(v: Value, what = 'a template'): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return String(v);
  throw new ExprError(
    `cannot put a ${typeName(v)} into ${what}${v === null ? '' : '; use jsonencode() or join()'}`,
  );
}

function toNumber(v: Value, op: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(v.trim())) return Number(v);
  throw new ExprError(`operator ${op} needs numbers, got ${typeName(v)}`);
}

function toBool(v: Value, what: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new ExprError(`${what} needs a bool, got ${typeName(v)}`);
}

function arithmetic(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      if (b === 0) throw new ExprError('division by zero');
      return a / b;
    case '%':
      if (b === 0) throw new ExprError('modulo by zero');
      return a % b;
    case '<':
      return Number(a < b);
    case '<=':
      return Number(a <= b);
    case '>':
      return Number(a > b);
    default:
      return Number(a >= b);
  }
}

function binary(op: BinaryOp, left: Expr, right: Expr, ctx: EvalContext, scope: Scope): Value {
  if (op === '&&' || op === '||') {
    const l = toBool(evaluate(left, ctx, scope), `operator ${op}`);
    if (op === '&&' ? !l : l) return l;
    return toBool(evaluate(right, ctx, scope), `operator ${op}`);
  }
  const a = evaluate(left, ctx, scope);
  const b = evaluate(right, ctx, scope);
  if (op === '==') return valuesEqual(a, b);
  if (op === '!=') return !valuesEqual(a, b);
  const n = arithmetic(op, toNumber(a, op), toNumber(b, op));
  if (op === '<' || op === '<=' || op === '>' || op === '>=') return n === 1;
  if (!Number.isFinite(n)) throw new ExprError(`arithmetic overflow in ${op}`);
  return n;
}

function index(target: Value, key: Value): Value {
  if (Array.isArray(target)) {
    const i = typeof key === 'string' && /^[0-9]+$/.test(key) ? Number(key) : key;
    if (typeof i !== 'number' || !Number.isInteger(i))
      throw new ExprError(`a list index must be a whole number, got ${typeName(key)}`);
    if (i < 0 || i >= target.length)
      throw new ExprError(`index ${i} out of range for a list of ${target.length}`);
    return target[i] as Value;
  }
  if (isMap(target)) {
    const k = toText(key, 'a map key');
    if (!target.has(k)) throw new ExprError(`map has no key "${k}"`);
    return target.get(k) as Value;
  }
  throw new ExprError(`cannot index a ${typeName(target)}`);
}

/** Key/value pairs of a collection, as for-expressions and `%{ for }` iterate them. */
export function entries(v: Value, what: string): [Value, Value][] {
  if (Array.isArray(v)) return v.map((x, i) => [i, x]);
  if (isMap(v)) return sortedKeys(v).map((k) => [k, v.get(k) as Value]);
  throw new ExprError(`${what} needs a list or map, got ${typeName(v)}`);
}

function forExpr(e: Extract<Expr, { kind: 'for' }>, ctx: EvalContext, scope: Scope): Value {
  const list: Value[] = [];
  const map: ValueMap = new Map();
  for (const [k, v] of entries(evaluate(e.collection, ctx, scope), 'for')) {
    ctx.budget.charge(1);
    let inner: Scope = { name: e.valVar, value: v, parent: scope };
    if (e.keyVar) inner = { name: e.keyVar, value: k, parent: inner };
    if (e.cond && !toBool(evaluate(e.cond, ctx, inner), 'the if clause of a for expression')) continue;
    const value = evaluate(e.valueExpr, ctx, inner);
    if (!e.object || !e.keyExpr) {
      list.push(value);
      continue;
    }
    const key = toText(evaluate(e.keyExpr, ctx, inner), 'a map key');
    const prev = map.get(key);
    if (e.group) map.set(key, [...((prev as Value[] | undefined) ?? []), value]);
    else if (map.has(key))
      throw new ExprError(`duplicate key "${key}" in a for expression; add '...' to group`);
    else map.set(key, value);
  }
  return e.object ? map : list;
}

function template(parts: Expr[], ctx: EvalContext, scope: Scope): string {
  let out = '';
  for (const part of parts) {
    const text = toText(evaluate(part, ctx, scope));
    ctx.budget.checkLength(out.length + text.length);
    out += text;
  }
  return out;
}

export function evaluate(e: Expr, ctx: EvalContext, scope: Scope = null): Value {
  ctx.budget.charge(1);
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'template':
      return template(e.parts, ctx, scope);
    case 'wrap':
      return evaluate(e.expr, ctx, scope);
    case 'var': {
      const found = lookup(scope, e.name);
      if (found) return found.value;
      if (e.name === 'local') throw new ExprError('"local" must be followed by a name, as in local.app_dir');
      throw new ExprError(
        `unknown reference "${e.name}" (only local.<name> and for-expression variables exist)`,
      );
    }
    case 'getAttr':
      if (e.target.kind === 'var' && e.target.name === 'local' && !lookup(scope, 'local'))
        return ctx.local(e.name);
      return index(evaluate(e.target, ctx, scope), e.name);
    case 'index': {
      if (e.target.kind === 'var' && e.target.name === 'local' && !lookup(scope, 'local')) {
        return ctx.local(toText(evaluate(e.key, ctx, scope), 'a local name'));
      }
      return index(evaluate(e.target, ctx, scope), evaluate(e.key, ctx, scope));
    }
    case 'splat': {
      const target = evaluate(e.target, ctx, scope);
      const items = target === null ? [] : Array.isArray(target) ? target : [target];
      return items.map((item) => evaluate(e.each, ctx, { name: '\0anon', value: item, parent: scope }));
    }
    case 'anon':
      return lookup(scope, '\0anon')?.value ?? null;
    case 'call': {
      const args = e.args.map((a) => evaluate(a, ctx, scope));
      if (e.expandLast) {
        const last = args.pop() ?? null;
        if (!Array.isArray(last)) throw new ExprError(`'...' needs a list, got ${typeName(last)}`);
        args.push(...last);
      }
      return callFunction(e.name, args, ctx.budget);
    }
    case 'unary': {
      const v = evaluate(e.operand, ctx, scope);
      return e.op === '!' ? !toBool(v, 'operator !') : -toNumber(v, '-');
    }
    case 'binary':
      return binary(e.op, e.left, e.right, ctx, scope);
    case 'cond':
      return evaluate(
        toBool(evaluate(e.cond, ctx, scope), 'a condition') ? e.whenTrue : e.whenFalse,
        ctx,
        scope,
      );
    case 'tuple':
      return e.items.map((item) => evaluate(item, ctx, scope));
    case 'object': {
      const m: ValueMap = new Map();
      for (const item of e.items)
        m.set(toText(evaluate(item.key, ctx, scope), 'a map key'), evaluate(item.value, ctx, scope));
      return m;
    }
    case 'for':
      return forExpr(e, ctx, scope);
    case 'tplIf': {
      const branch = toBool(evaluate(e.cond, ctx, scope), '%{ if }') ? e.whenTrue : e.whenFalse;
      return branch ? toText(evaluate(branch, ctx, scope)) : '';
    }
    case 'tplFor': {
      let out = '';
      for (const [k, v] of entries(evaluate(e.collection, ctx, scope), '%{ for }')) {
        let inner: Scope = { name: e.valVar, value: v, parent: scope };
        if (e.keyVar) inner = { name: e.keyVar, value: k, parent: inner };
        const text = toText(evaluate(e.body, ctx, inner));
        ctx.budget.checkLength(out.length + text.length);
        out += text;
      }
      return out;
    }
  }
}
