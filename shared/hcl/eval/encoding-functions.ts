/** JSON and base64 encoding; `format`'s `%v` uses jsonencode for lists and maps too. */
import type { Budget } from './budget.js';
import { type Fn, str } from './function-args.js';
import { isMap, sortedKeys, type Value } from './value.js';

export function jsonencode(v: Value, budget: Budget | null): string {
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

export const ENCODING_FUNCTIONS: Record<string, Fn> = {
  jsonencode: (a, b) => jsonencode(a[0] ?? null, b),
  base64encode: (a, b) => {
    const s = str(a[0], 'base64encode', 1);
    b.checkLength(Math.ceil(s.length / 3) * 4 * 3);
    return Buffer.from(s, 'utf8').toString('base64');
  },
  base64decode: (a) => Buffer.from(str(a[0], 'base64decode', 1), 'base64').toString('utf8'),
};
