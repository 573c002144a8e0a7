/**
 * Values of the HCL expression language as Fluke evaluates them. Maps are `Map`s so that a
 * manifest key such as `__proto__` is just a key; they become plain objects only at the edge.
 */
export type Value = string | number | boolean | null | Value[] | ValueMap;
export type ValueMap = Map<string, Value>;

export function isMap(v: Value): v is ValueMap {
  return v instanceof Map;
}

export function typeName(v: Value): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Map) return 'map';
  return typeof v;
}

/** HCL prints whole numbers without a fraction and others in their shortest form. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return BigInt(n).toString();
  return String(n);
}

export function valuesEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => valuesEqual(x, b[i] as Value));
  }
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) {
      if (!b.has(k) || !valuesEqual(v, b.get(k) as Value)) return false;
    }
    return true;
  }
  return false;
}

/** Keys in the order HCL iterates maps: lexical. */
export function sortedKeys(m: ValueMap): string[] {
  return [...m.keys()].sort(compareStrings);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Turn parsed JSON into a Value; plain objects become Maps. */
export function fromJson(j: unknown): Value {
  if (j === null || typeof j === 'string' || typeof j === 'number' || typeof j === 'boolean') return j;
  if (Array.isArray(j)) return j.map(fromJson);
  if (typeof j === 'object') {
    const m: ValueMap = new Map();
    for (const [k, v] of Object.entries(j as Record<string, unknown>)) m.set(k, fromJson(v));
    return m;
  }
  return null;
}

export type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

/** Turn a Value into JSON-ready data; map keys become own properties (safe for `__proto__`). */
export function toPlain(v: Value): Plain {
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  return v;
}
