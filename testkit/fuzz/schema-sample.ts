/**
 * A valid-looking value for a zod schema, built from the schema's current shape: objects get every
 * field, strings respect min/max length, enums and literals pick a member, numbers are small
 * non-negative integers. Regex or refined strings may still fail; callers validate the result and
 * fall back to a hand-written frame. This keeps the fuzzer's corpus in step with shared/protocol.ts
 * when fields are added.
 */
import type { z } from 'zod';
import type { Rng } from './prng.js';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  entries?: Record<string, string | number>;
  values?: unknown[];
  innerType?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  checks?: Array<{ _zod: { def: { check: string; minimum?: number; maximum?: number } } }>;
  minimum?: number;
  maximum?: number;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

function lengthBounds(def: Def): { min: number; max: number } {
  let min = 0;
  let max = 12;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === 'min_length' && d.minimum !== undefined) min = Math.max(min, d.minimum);
    if (d.check === 'max_length' && d.maximum !== undefined) max = Math.min(max, d.maximum);
    if (d.check === 'length_equals' && d.minimum !== undefined) min = max = d.minimum;
  }
  return { min, max: Math.max(min, max) };
}

function sampleString(def: Def, r: Rng): string {
  const { min, max } = lengthBounds(def);
  const n = r.range(Math.max(min, 1), Math.max(min, Math.min(max, 12)));
  let s = r.pick(ALNUM.slice(0, 26).split(''));
  while (s.length < n) s += r.pick(ALNUM.split(''));
  return s.slice(0, Math.max(n, min));
}

/** A sample value for `schema`; `depth` bounds recursion. */
export function sampleOf(schema: z.ZodType, r: Rng, depth = 0): unknown {
  const def = defOf(schema);
  if (depth > 12) return undefined;
  switch (def.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(def.shape ?? {})) {
        const v = sampleOf(field, r, depth + 1);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    case 'string':
      return sampleString(def, r);
    case 'number':
      return r.range(1, 5000);
    case 'int':
      return r.range(1, 5000);
    case 'boolean':
      return r.chance(0.5);
    case 'null':
      return null;
    case 'literal':
      return def.values?.[0];
    case 'enum':
      return r.pick(Object.values(def.entries ?? {}));
    case 'array': {
      const { min } = lengthBounds(def);
      const n = Math.max(min, r.int(3));
      return Array.from({ length: n }, () => sampleOf(def.element as z.ZodType, r, depth + 1));
    }
    case 'record': {
      const out: Record<string, unknown> = {};
      for (let i = r.int(3); i > 0; i--) {
        const k = sampleOf(def.keyType as z.ZodType, r, depth + 1);
        out[String(k)] = sampleOf(def.valueType as z.ZodType, r, depth + 1);
      }
      return out;
    }
    case 'nullable':
      return r.chance(0.3) ? null : sampleOf(def.innerType as z.ZodType, r, depth + 1);
    case 'optional':
      return r.chance(0.3) ? undefined : sampleOf(def.innerType as z.ZodType, r, depth + 1);
    case 'default':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return sampleOf(def.innerType as z.ZodType, r, depth + 1);
    case 'union':
      return sampleOf(r.pick(def.options ?? []), r, depth + 1);
    case 'pipe':
      return sampleOf(def.in as z.ZodType, r, depth + 1);
    default:
      return undefined;
  }
}

/** The `type` literal of each member of a discriminated union such as AgentMessage. */
export function unionTypes(union: z.ZodType): Map<string, z.ZodType> {
  const out = new Map<string, z.ZodType>();
  for (const option of defOf(union).options ?? []) {
    const typeField = defOf(option).shape?.type;
    const literal = typeField ? defOf(typeField).values?.[0] : undefined;
    if (typeof literal === 'string') out.set(literal, option);
  }
  return out;
}
