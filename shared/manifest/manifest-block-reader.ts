/**
 * Reads one manifest block's attributes with the checks every field needs: known names only,
 * required ones present, the right type, enums in range. Every problem is reported, none thrown,
 * so one run lists all of them; a bad field reads as its default so checking can go on.
 *
 * Not the config files' reader (shared/config/config-body-reader.ts), on purpose: here every
 * attribute is an expression evaluated on demand (locals, functions, templates; numbers computed
 * into text as Terraform does), with no process environment, and problems are reported by line
 * and column through the compiler's BuildEnv. Config files hold literal values with `${VAR}`
 * substitution and report by field path.
 */

import { toText } from '../hcl/eval/evaluate.js';
import type { Value } from '../hcl/eval/value.js';
import { isMap, typeName } from '../hcl/eval/value.js';
import type { AttrDecl, BlockDecl } from './load-file.js';

export interface BuildEnv {
  error(line: number, column: number | undefined, message: string): void;
  warning(line: number, column: number | undefined, message: string): void;
  /** Evaluates an attribute; undefined when that failed (already reported). */
  evaluate(attr: AttrDecl): Value | undefined;
}

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;

/** Was this value written as a literal (`check = 1`), rather than computed (`"${8000 + 1}"`)? */
function writtenLiteral(attr: AttrDecl, key?: string): boolean {
  const expr = attr.expr;
  if (!expr) return false;
  if (key === undefined) return expr.kind === 'literal';
  if (expr.kind !== 'object') return false;
  const item = expr.items.find((i) => i.key.kind === 'literal' && i.key.value === key);
  return item?.value.kind === 'literal';
}

/**
 * A number or bool computed by an expression becomes text where text is wanted, as Terraform
 * converts it (hcl2json turns `x = "${local.port}"` and `x = local.port` into the same thing, so
 * the two cannot be told apart); one written literally is a mistake and stays an error.
 */
function asText(v: Value, attr: AttrDecl, key?: string): Value {
  if ((typeof v === 'number' || typeof v === 'boolean') && !writtenLiteral(attr, key)) return toText(v);
  return v;
}

export class ManifestBlockReader {
  private readonly attrs = new Map<string, AttrDecl>();

  constructor(
    readonly block: BlockDecl,
    /** How messages name this block, e.g. `shell "config"`. */
    readonly what: string,
    readonly env: BuildEnv,
    allowedAttrs: readonly string[],
    allowedBlocks: readonly string[],
  ) {
    for (const attr of block.attrs) {
      if (allowedAttrs.includes(attr.name)) this.attrs.set(attr.name, attr);
      else {
        const hint = allowedBlocks.includes(attr.name)
          ? ` ("${attr.name}" is a block: write ${attr.name} { ... })`
          : '';
        this.error(
          attr,
          `unknown attribute "${attr.name}"${hint}; expected one of ${allowedAttrs.join(', ') || 'none'}`,
        );
      }
    }
  }

  error(at: { line: number; column?: number }, message: string): void {
    this.env.error(at.line, at.column, `${this.what}: ${message}`);
  }

  has(name: string): boolean {
    return this.attrs.has(name);
  }

  /** The evaluated value, undefined when absent or failed. */
  value(name: string, required = false): { attr: AttrDecl; value: Value } | undefined {
    const attr = this.attrs.get(name);
    if (!attr) {
      if (required) this.error(this.block, `missing required attribute "${name}"`);
      return undefined;
    }
    const value = this.env.evaluate(attr);
    return value === undefined ? undefined : { attr, value };
  }

  string(name: string, required: true): string;
  string(name: string, required: false, fallback: string): string;
  string(name: string, required: false): string | null;
  string(name: string, required: boolean, fallback: string | null = null): string | null {
    const got = this.value(name, required);
    if (!got) return required ? '' : fallback;
    if (got.value === null && !required) return fallback;
    const value = asText(got.value, got.attr);
    if (typeof value !== 'string') {
      this.error(got.attr, `${name} must be a string, got ${typeName(value)}`);
      return required ? '' : fallback;
    }
    if (required && value.trim() === '') this.error(got.attr, `${name} must not be empty`);
    return value;
  }

  enumeration<T extends string>(name: string, allowed: readonly T[], fallback: T | null): T | null {
    const got = this.value(name, fallback === null);
    if (!got) return fallback;
    if (typeof got.value !== 'string' || !(allowed as readonly string[]).includes(got.value)) {
      const shown = typeof got.value === 'string' ? `"${got.value}"` : `a ${typeName(got.value)}`;
      this.error(got.attr, `${name} must be one of ${allowed.join(', ')}; got ${shown}`);
      return fallback;
    }
    return got.value as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const got = this.value(name);
    if (!got) return fallback;
    if (typeof got.value !== 'boolean') {
      this.error(got.attr, `${name} must be true or false, got ${typeName(got.value)}`);
      return fallback;
    }
    return got.value;
  }

  /** A map of strings; `keyCheck` returns a complaint about a key, or null. */
  stringMap(name: string, keyCheck?: (key: string) => string | null): Record<string, string> {
    const got = this.value(name);
    if (!got || got.value === null) return {};
    if (!isMap(got.value)) {
      this.error(got.attr, `${name} must be a map, got ${typeName(got.value)}`);
      return {};
    }
    const out: [string, string][] = [];
    for (const [k, raw] of got.value) {
      const bad = keyCheck?.(k);
      if (bad) this.error(got.attr, `${name}: ${bad}`);
      const v = asText(raw, got.attr, k);
      if (typeof v !== 'string') this.error(got.attr, `${name}.${k} must be a string, got ${typeName(v)}`);
      else out.push([k, v]);
    }
    return Object.fromEntries(out);
  }

  /** A list of strings; null when absent. */
  stringList(name: string): string[] | null {
    const got = this.value(name);
    if (!got || got.value === null) return null;
    if (!Array.isArray(got.value) || got.value.some((v) => typeof v !== 'string')) {
      this.error(got.attr, `${name} must be a list of strings, got ${typeName(got.value)}`);
      return null;
    }
    return got.value as string[];
  }

  /** Sub-blocks of one type; more than `max` is an error at the extra one. */
  blocks(type: string, max = Number.POSITIVE_INFINITY): BlockDecl[] {
    const found = this.block.blocks.filter((b) => b.type === type);
    for (const extra of found.slice(max)) this.error(extra, `more than one ${type} block`);
    for (const b of found) if (b.labels.length > 0) this.error(b, `a ${type} block takes no label`);
    return found.slice(0, max);
  }
}
