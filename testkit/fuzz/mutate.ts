// biome-ignore-all lint/suspicious/noTemplateCurlyInString: hostile strings for the fuzzer, not JS templates
/**
 * Mutations of valid frames: structural ones on the parsed object (type swaps, huge numbers, deep
 * nesting, long strings, hostile characters, prototype keys, missing and extra fields) and raw
 * ones on the bytes (bit flips, truncation, duplicated keys, invalid UTF-8, binary frames, empty
 * and oversized frames). Each frame names its mutation so outcomes can be tallied by it.
 */
import { type Json, type JsonObject, validFrame } from './frames.js';
import type { Rng } from './prng.js';

export interface FuzzFrame {
  /** The message type the frame was made from. */
  type: string;
  mutation: string;
  bytes: Buffer;
  /** Sent as a binary WebSocket frame rather than text. */
  binary: boolean;
}

export interface MutateOptions {
  /** The gateway's frame limit; oversized frames are made around 1× and 2× it. */
  maxPayloadBytes: number;
  /** Share of frames made near or above the limit (they are slow to send). */
  oversizedShare: number;
}

const HOSTILE = [
  '\u0000',
  '\u001b[31m',
  '\u001b]0;title\u0007',
  '\r\n',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udfff',
  '𝔘𝔫𝔦',
  '../../etc/passwd',
  '${jndi:x}',
  '%s%n',
  '\\',
  '"',
  '*',
  '{a:foo}',
  'a\u0000b',
];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const HUGE = [
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER - 2,
  -1,
  -0,
  0.5,
  2 ** 31,
  2 ** 64,
  4.9e-324,
];

/** Paths to every value in a JSON value (including the root's children). */
function paths(v: Json, at: Array<string | number> = [], out: Array<Array<string | number>> = []) {
  if (Array.isArray(v)) for (const [i, x] of v.entries()) paths(x, [...at, i], out);
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  if (at.length > 0) out.push(at);
  return out;
}

function getAt(root: Json, path: Array<string | number>): Json {
  let cur: Json = root;
  for (const p of path) cur = (cur as Record<string | number, Json>)[p] as Json;
  return cur;
}

function setAt(root: Json, path: Array<string | number>, value: Json | undefined): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, Json>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = value;
}

function randomValue(r: Rng): Json {
  return r.pick<() => Json>([
    () => null,
    () => true,
    () => r.int(100),
    () => HUGE[r.int(HUGE.length)] as number,
    () => 'x',
    () => '',
    () => [],
    () => ({}),
    () => [1, 'a', null],
    () => ({ a: { b: 1 } }),
  ])();
}

function nest(depth: number, leaf: Json, asArray: boolean): string {
  const leafText = JSON.stringify(leaf);
  return asArray
    ? `${'['.repeat(depth)}${leafText}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}${leafText}${'}'.repeat(depth)}`;
}

type Structural = (
  r: Rng,
  obj: JsonObject,
  pick: () => Array<string | number>,
  /** The frame's own agent name (a name no other case uses, so sessions never replace each other). */
  agent: string,
) => string | null;

/** Mutations of the parsed object; each returns the frame text. */
const STRUCTURAL: Record<string, Structural> = {
  type_swap: (r, obj, pick) => {
    setAt(obj, pick(), randomValue(r));
    return JSON.stringify(obj);
  },
  huge_number: (r, obj, pick) => {
    const nums = paths(obj).filter((p) => typeof getAt(obj, p) === 'number');
    const p = nums.length > 0 ? r.pick(nums) : pick();
    const text = JSON.stringify(obj);
    if (r.chance(0.3)) {
      // Numbers JSON.stringify cannot write: big exponents, long digit runs.
      const raw = r.pick(['1e999', '-1e999', '9'.repeat(400), '0.0000000000000000000001e-400', '1E+2']);
      setAt(obj, p, '@@NUM@@');
      return JSON.stringify(obj).replace('"@@NUM@@"', raw);
    }
    setAt(obj, p, HUGE[r.int(HUGE.length)] as number);
    return JSON.stringify(obj) ?? text;
  },
  deep_nesting: (r, obj, pick) => {
    const depth = r.pick([64, 1000, 10_000, 50_000]);
    setAt(obj, pick(), '@@DEEP@@');
    return JSON.stringify(obj).replace('"@@DEEP@@"', nest(depth, 1, r.chance(0.5)));
  },
  long_string: (r, obj, pick) => {
    const strings = paths(obj).filter((p) => typeof getAt(obj, p) === 'string');
    const p = strings.length > 0 ? r.pick(strings) : pick();
    setAt(obj, p, r.pick(['x', 'é', '\u0000', '𝔘']).repeat(r.pick([254, 1025, 16_385, 100_000])));
    return JSON.stringify(obj);
  },
  hostile_chars: (r, obj, pick) => {
    const strings = paths(obj).filter((p) => typeof getAt(obj, p) === 'string');
    const p = strings.length > 0 ? r.pick(strings) : pick();
    const cur = getAt(obj, p);
    const bad = HOSTILE[r.int(HOSTILE.length)] as string;
    setAt(obj, p, r.chance(0.5) ? bad : `${String(cur)}${bad}`);
    return JSON.stringify(obj);
  },
  proto_keys: (r, obj) => {
    const key = r.pick(PROTO_KEYS);
    const value: Json = r.chance(0.5) ? { polluted: 'yes', isAdmin: true } : 'x';
    const targets = paths(obj).filter((p) => {
      const v = getAt(obj, p);
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    });
    // JSON.stringify drops an own __proto__ set by assignment; write the key into the text.
    const marker = '"@@PROTO@@":0';
    if (targets.length > 0 && r.chance(0.7)) {
      const target = getAt(obj, r.pick(targets)) as JsonObject;
      target['@@PROTO@@'] = 0;
    } else obj['@@PROTO@@'] = 0;
    return JSON.stringify(obj).replace(marker, `${JSON.stringify(key)}:${JSON.stringify(value)}`);
  },
  missing_field: (r, obj) => {
    const keys = Object.keys(obj);
    if (keys.length > 0) delete obj[r.pick(keys)];
    return JSON.stringify(obj);
  },
  missing_nested: (_r, obj, pick) => {
    setAt(obj, pick(), undefined);
    return JSON.stringify(obj);
  },
  extra_field: (r, obj) => {
    obj[r.pick(['extra', 'admin', 'v', 'session_id', 'gateway_id', 'result_id'])] = randomValue(r);
    return JSON.stringify(obj);
  },
  other_type: (r, obj) => {
    // A valid body under another message's `type`.
    obj.type = r.pick([
      'register',
      'heartbeat',
      'output',
      'results',
      'task_result',
      'run',
      'registered',
      'Register',
      '',
    ]);
    return JSON.stringify(obj);
  },
  splice: (r, obj, _pick, agent) => {
    const other = validFrame(r, r.pick(['register', 'task_result', 'output', 'results']), agent);
    return JSON.stringify({ ...other, ...obj, ...(r.chance(0.5) ? { type: other.type } : {}) });
  },
  big_array: (r, obj) => {
    const arrays = paths(obj).filter((p) => Array.isArray(getAt(obj, p)));
    const n = r.pick([1001, 5000]);
    if (arrays.length > 0) {
      const p = r.pick(arrays);
      const cur = getAt(obj, p) as Json[];
      setAt(
        obj,
        p,
        Array.from({ length: n }, (_, i) => cur[i % Math.max(cur.length, 1)] ?? 'x'),
      );
    } else obj.running = Array.from({ length: n }, (_, i) => `i-${i}`);
    return JSON.stringify(obj);
  },
};

type Raw = (r: Rng, text: string) => { bytes: Buffer; binary?: boolean };

/** Mutations of the bytes. */
const RAW: Record<string, Raw> = {
  bit_flip: (r, text) => {
    const b = Buffer.from(text, 'utf8');
    for (let i = r.range(1, 8); i > 0 && b.length > 0; i--) {
      const at = r.int(b.length);
      b[at] = (b[at] as number) ^ (1 << r.int(8));
    }
    return { bytes: b };
  },
  truncate: (r, text) => ({ bytes: Buffer.from(text, 'utf8').subarray(0, r.int(Math.max(text.length, 1))) }),
  duplicate_key: (r, text) => {
    const dup = r.pick([
      '"type":"register",',
      '"type":"heartbeat",',
      '"name":"fz-dup",',
      '"v":99,',
      '"__proto__":{"x":1},',
      '"messages":[],',
    ]);
    return {
      bytes: Buffer.from(
        r.chance(0.5) ? `{${dup}${text.slice(1)}` : `${text.slice(0, -1)},${dup.slice(0, -1)}}`,
      ),
    };
  },
  invalid_utf8: (r, text) => {
    const bad = r.pick([
      [0xff],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
      [0x80],
    ]);
    const b = Buffer.from(text, 'utf8');
    const at = r.int(b.length + 1);
    return { bytes: Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]) };
  },
  binary: (_r, text) => ({ bytes: Buffer.from(text, 'utf8'), binary: true }),
  empty: () => ({ bytes: Buffer.alloc(0) }),
  not_an_object: (r) => ({
    bytes: Buffer.from(
      r.pick([
        'null',
        '1',
        '"register"',
        '[]',
        '[{"type":"register"}]',
        'true',
        '{}',
        ' ',
        'NaN',
        '{"type":null}',
      ]),
    ),
  }),
  random_bytes: (r) => {
    const b = Buffer.alloc(r.range(1, 512));
    for (let i = 0; i < b.length; i++) b[i] = r.chance(0.8) ? r.range(0x20, 0x7e) : r.int(256);
    return { bytes: b };
  },
  trailing_garbage: (r, text) => ({
    bytes: Buffer.from(`${text}${r.pick(['x', '}', ',', '\u0000', ' {}'])}`),
  }),
};

function oversized(r: Rng, obj: JsonObject, max: number): { mutation: string; bytes: Buffer } {
  const target = r.pick([max - 64, max + 1, max + 4096, 2 * max - 64, 2 * max + 1024]);
  const text = JSON.stringify({ ...obj, pad: '' });
  const pad = Math.max(0, target - Buffer.byteLength(text));
  const bytes = Buffer.from(text.replace('"pad":""', `"pad":"${'p'.repeat(pad)}"`));
  const mutation =
    target <= max ? 'oversize_just_under' : target < 2 * max ? 'oversize_over_1x' : 'oversize_over_2x';
  return { mutation, bytes };
}

export const MUTATIONS: readonly string[] = [
  'valid',
  ...Object.keys(STRUCTURAL),
  ...Object.keys(RAW),
  'oversize',
];

/**
 * One frame made from a valid frame of `type`: unchanged (about 1 in 8), or mutated once or twice.
 */
export function mutateFrame(r: Rng, type: string, agent: string, opts: MutateOptions): FuzzFrame {
  const obj = validFrame(r, type, agent);
  if (r.chance(opts.oversizedShare)) {
    const o = oversized(r, obj, opts.maxPayloadBytes);
    return { type, mutation: o.mutation, bytes: o.bytes, binary: false };
  }
  if (r.chance(0.125))
    return { type, mutation: 'valid', bytes: Buffer.from(JSON.stringify(obj)), binary: false };
  const all = paths(obj);
  const pick = () => (all.length > 0 ? r.pick(all) : ['type']);
  const names = Object.keys(STRUCTURAL);
  const rawNames = Object.keys(RAW);
  if (r.chance(0.6)) {
    const name = r.pick(names);
    let text = (STRUCTURAL[name] as Structural)(r, obj, pick, agent) ?? JSON.stringify(obj);
    const mutation = name;
    if (r.chance(0.15)) {
      const second = r.pick(rawNames);
      const out = (RAW[second] as Raw)(r, text);
      return { type, mutation: `${name}+${second}`, bytes: out.bytes, binary: out.binary ?? false };
    }
    text ??= '';
    return { type, mutation, bytes: Buffer.from(text, 'utf8'), binary: false };
  }
  const name = r.pick(rawNames);
  const out = (RAW[name] as Raw)(r, JSON.stringify(obj));
  return { type, mutation: name, bytes: out.bytes, binary: out.binary ?? false };
}
