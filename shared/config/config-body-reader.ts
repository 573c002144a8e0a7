/**
 * Typed reads of one body of a config file (server.hcl, agent.hcl), pairing hcl2json's JSON
 * (values, but keys sorted and no lines) with the outline (what is a block and what an attribute,
 * and where each sits). Every problem is recorded in the shared context instead of thrown, so one
 * run reports them all; a getter that found a problem returns undefined and the caller falls back
 * to its default.
 *
 * Not the manifest's reader (shared/manifest/manifest-block-reader.ts), on purpose: a config file
 * holds literal values with `${VAR}` taken from the process environment, read as hcl2json gives
 * them, and its problems are reported by field path (`server.tls.cert_file`) as ConfigIssues. A
 * manifest holds expressions (locals, functions) evaluated per attribute, with no environment,
 * and reports line and column. Same shape of API, different values and different errors.
 */
import { DurationError, parseWholeMs } from '../duration.js';
import type { HclAttribute, HclBlock } from '../hcl/outline.js';
import { type BodySchema, schemaProblems } from './body-schema.js';
import type { ConfigIssue } from './config-error.js';
import { type Env, substituteEnv } from './env.js';

export type { BodySchema } from './body-schema.js';

export interface ReadContext {
  file: string;
  env: Env;
  errors: ConfigIssue[];
}

interface Body {
  attributes: HclAttribute[];
  blocks: HclBlock[];
}

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'boolean') return 'a bool';
  if (typeof v === 'number') return 'a number';
  return `a ${typeof v}`;
}

const EMPTY: Body = { attributes: [], blocks: [] };

export class ConfigBodyReader {
  /**
   * @param line where this block starts, or where its parent does when it is absent, so
   *   "missing" errors point somewhere useful.
   */
  constructor(
    private readonly ctx: ReadContext,
    readonly path: string,
    readonly line: number,
    readonly present: boolean,
    private readonly body: Body,
    private readonly json: Json,
    schema: BodySchema,
  ) {
    for (const p of schemaProblems(body, schema)) this.error(p.name, p.message, p.line);
  }

  /** Records a problem on `field` of this body (field '' means the block itself). */
  error(field: string, message: string, line = this.line): void {
    const path = field ? (this.path ? `${this.path}.${field}` : field) : this.path;
    this.ctx.errors.push({ file: this.ctx.file, line, field: path, message });
  }

  lineOf(name: string): number {
    return this.body.attributes.find((a) => a.name === name)?.line ?? this.line;
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  /** The value of an attribute; `null` counts as unset. */
  private raw(name: string): unknown {
    if (!this.body.attributes.some((a) => a.name === name)) return undefined;
    const v = this.json[name];
    return v === null ? undefined : v;
  }

  /** The single nested block `type`; absent → an empty reader (its getters give defaults). */
  block(type: string, schema: BodySchema): ConfigBodyReader {
    const found = this.body.blocks.filter((b) => b.type === type && b.labels.length === 0);
    for (const dup of found.slice(1))
      this.error(type, `duplicate block (first at line ${found[0]?.line})`, dup.line);
    const first = found[0];
    const bodies = this.json[type];
    const json = Array.isArray(bodies) && isRecord(bodies[0]) ? bodies[0] : {};
    const path = this.path ? `${this.path}.${type}` : type;
    if (!first) return new ConfigBodyReader(this.ctx, path, this.line, false, EMPTY, {}, schema);
    return new ConfigBodyReader(this.ctx, path, first.line, true, first, json, schema);
  }

  /** Every `type "label" { }` block in source order; a repeated label is an error. */
  labeledBlocks(type: string, schema: BodySchema): { label: string; reader: ConfigBodyReader }[] {
    const out: { label: string; reader: ConfigBodyReader }[] = [];
    const seen = new Map<string, number>();
    const byLabel = isRecord(this.json[type]) ? this.json[type] : {};
    for (const b of this.body.blocks) {
      if (b.type !== type || b.labels.length !== 1) continue;
      const label = b.labels[0] ?? '';
      const first = seen.get(label);
      if (first !== undefined) {
        this.error(`${type}.${label}`, `duplicate block (first at line ${first})`, b.line);
        continue;
      }
      seen.set(label, b.line);
      const bodies = byLabel[label];
      const json = Array.isArray(bodies) && isRecord(bodies[0]) ? bodies[0] : {};
      const path = `${this.path}.${type}.${label}`;
      out.push({ label, reader: new ConfigBodyReader(this.ctx, path, b.line, true, b, json, schema) });
    }
    return out;
  }

  private substitute(name: string, text: string): string | undefined {
    const r = substituteEnv(text, this.ctx.env);
    if (r.ok) return r.value;
    for (const p of r.problems) this.error(name, p, this.lineOf(name));
    return undefined;
  }

  private typeError(name: string, want: string, got: unknown): undefined {
    this.error(name, `must be ${want}, got ${describe(got)}`, this.lineOf(name));
    return undefined;
  }

  string(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.typeError(name, 'a string', v);
    return this.substitute(name, v);
  }

  /** A string that must be present and non-empty. */
  requiredString(name: string, what = 'required'): string | undefined {
    if (!this.has(name)) {
      this.error(name, what);
      return undefined;
    }
    const v = this.string(name);
    if (v === '') this.error(name, 'must not be empty', this.lineOf(name));
    return v || undefined;
  }

  /** Native bools; a string only when it holds a `$` reference ("${TLS_ENABLED}"). */
  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined || typeof v === 'boolean') return v;
    if (typeof v !== 'string' || !v.includes('$')) return this.typeError(name, 'a bool (true or false)', v);
    const s = this.substitute(name, v);
    if (s === 'true' || s === 'false') return s === 'true';
    if (s !== undefined)
      this.error(name, `must be true or false, got ${JSON.stringify(s)}`, this.lineOf(name));
    return undefined;
  }

  integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && v.includes('$')) {
      const s = this.substitute(name, v);
      if (s === undefined) return undefined;
      n = /^-?\d+$/.test(s.trim()) ? Number(s) : Number.NaN;
    } else return this.typeError(name, 'a whole number', v);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.error(name, `must be a whole number from ${min} to ${max}, got ${String(v)}`, this.lineOf(name));
      return undefined;
    }
    return n;
  }

  /** A Go-style duration string, in whole milliseconds, greater than zero. */
  duration(name: string): number | undefined {
    const s = this.string(name);
    if (s === undefined) return undefined;
    try {
      const ms = parseWholeMs(s);
      if (ms > 0) return ms;
      this.error(name, `must be greater than zero, got ${JSON.stringify(s)}`, this.lineOf(name));
    } catch (err) {
      if (!(err instanceof DurationError)) throw err;
      this.error(name, err.message, this.lineOf(name));
    }
    return undefined;
  }

  enumValue<T extends string>(name: string, values: readonly T[]): T | undefined {
    const s = this.string(name);
    if (s === undefined) return undefined;
    if ((values as readonly string[]).includes(s)) return s as T;
    const list = values.map((x) => JSON.stringify(x)).join(', ');
    this.error(name, `must be one of ${list}, got ${JSON.stringify(s)}`, this.lineOf(name));
    return undefined;
  }

  private stringItems(name: string, items: unknown[], what: string): string[] | undefined {
    const out: string[] = [];
    let ok = true;
    for (const [i, item] of items.entries()) {
      if (typeof item !== 'string') {
        this.error(name, `${what}[${i}] must be a string, got ${describe(item)}`, this.lineOf(name));
        ok = false;
        continue;
      }
      const s = this.substitute(name, item);
      if (s === undefined) ok = false;
      else out.push(s);
    }
    return ok ? out : undefined;
  }

  stringList(name: string): string[] | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return this.typeError(name, 'a list of strings', v);
    return this.stringItems(name, v, 'item');
  }

  /** `{ key = "value" }`; values are substituted, keys are taken as written. */
  stringMap(name: string): Record<string, string> | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!isRecord(v)) return this.typeError(name, 'a map of strings', v);
    const out: Record<string, string> = {};
    let ok = true;
    for (const [key, item] of Object.entries(v)) {
      if (typeof item !== 'string') {
        this.error(
          name,
          `value of ${JSON.stringify(key)} must be a string, got ${describe(item)}`,
          this.lineOf(name),
        );
        ok = false;
        continue;
      }
      const s = this.substitute(name, item);
      if (s === undefined) ok = false;
      else out[key] = s;
    }
    return ok ? out : undefined;
  }

  /** `{ key = ["a", "b"] }`. */
  stringListMap(name: string): Record<string, string[]> | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!isRecord(v)) return this.typeError(name, 'a map of string lists', v);
    const out: Record<string, string[]> = {};
    let ok = true;
    for (const [key, item] of Object.entries(v)) {
      if (!Array.isArray(item)) {
        this.error(
          name,
          `value of ${JSON.stringify(key)} must be a list of strings, got ${describe(item)}`,
          this.lineOf(name),
        );
        ok = false;
        continue;
      }
      const list = this.stringItems(name, item, `${key}`);
      if (list === undefined) ok = false;
      else out[key] = list;
    }
    return ok ? out : undefined;
  }
}
