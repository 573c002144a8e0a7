/**
 * A parser for HCL expressions and templates as @cdktf/hcl2json hands them over: every string it
 * returns is a template body (text already unescaped, `$${`/`%%{` still escaped, `${...}` and
 * `%{...}` in source form). hcl2json's own `getExpressionAst` was measured at ~0.7 ms per call and
 * returns a lossy tree (object keys untyped, index keys as source text), so Fluke parses here.
 */
import type { BinaryOp, Expr } from './ast.js';
import { Cursor } from './cursor.js';
import { parseTemplate } from './parse-template.js';

export { Cursor } from './cursor.js';

const NUMBER = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const BINARY_LEVELS: BinaryOp[][] = [
  ['||'],
  ['&&'],
  ['==', '!='],
  ['<=', '>=', '<', '>'],
  ['+', '-'],
  ['*', '/', '%'],
];

export function parseExpr(c: Cursor): Expr {
  const cond = parseBinary(c, 0);
  if (!c.eat('?')) return cond;
  c.enter();
  const then = parseExpr(c);
  c.expect(':');
  const out: Expr = { kind: 'cond', cond, whenTrue: then, whenFalse: parseExpr(c) };
  c.leave();
  return out;
}

function parseBinary(c: Cursor, level: number): Expr {
  const ops = BINARY_LEVELS[level];
  if (!ops) return parseUnary(c);
  let left = parseBinary(c, level + 1);
  let chain = 0;
  for (;;) {
    c.skip();
    // `<=`/`>=` are listed before `<`/`>` so the longer operator wins.
    const op = ops.find((o) => c.startsWith(o));
    if (!op) {
      c.depth -= chain;
      return left;
    }
    c.pos += op.length;
    // A chain `a + b + c` nests to the left; each link counts, so evaluation depth stays bounded.
    c.enter();
    chain++;
    left = { kind: 'binary', op, left, right: parseBinary(c, level + 1) };
  }
}

function parseUnary(c: Cursor): Expr {
  c.skip();
  const ch = c.peek();
  if ((ch === '-' || ch === '!') && c.peek(1) !== '=') {
    c.pos++;
    c.enter();
    const operand = parseUnary(c);
    c.leave();
    return { kind: 'unary', op: ch, operand };
  }
  return parsePostfix(c, parsePrimary(c));
}

function parseTraversal(c: Cursor, target: Expr, splat: boolean): Expr | null {
  c.skip();
  if (c.peek() === '.' && c.peek(1) !== '.') {
    c.pos++;
    c.skip();
    NUMBER.lastIndex = c.pos;
    const num = /[0-9]/.test(c.peek()) ? NUMBER.exec(c.src) : null;
    if (num) {
      c.pos += num[0].length;
      return { kind: 'index', target, key: { kind: 'literal', value: Number(num[0]) } };
    }
    if (!splat && c.peek() === '*') return null;
    const name = c.ident() ?? c.fail(`expected an attribute name after '.'${c.found()}`);
    return { kind: 'getAttr', target, name };
  }
  if (c.peek() === '[' && !/^\[\s*\*\s*\]/.test(c.src.slice(c.pos, c.pos + 8))) {
    c.pos++;
    const key = parseExpr(c);
    c.expect(']');
    return { kind: 'index', target, key };
  }
  return null;
}

function parsePostfix(c: Cursor, start: Expr): Expr {
  let expr = start;
  for (;;) {
    c.skip();
    const splat = /^(?:\[\s*\*\s*\]|\.\s*\*)/.exec(c.src.slice(c.pos, c.pos + 8));
    if (splat) {
      c.pos += splat[0].length;
      let each: Expr = { kind: 'anon' };
      for (let next = parseTraversal(c, each, true); next; next = parseTraversal(c, each, true)) each = next;
      expr = { kind: 'splat', target: expr, each };
      continue;
    }
    const next = parseTraversal(c, expr, false);
    if (!next) return expr;
    expr = next;
  }
}

function parsePrimary(c: Cursor): Expr {
  c.skip();
  const ch = c.peek();
  NUMBER.lastIndex = c.pos;
  const num = /[0-9]/.test(ch) ? NUMBER.exec(c.src) : null;
  if (num) {
    c.pos += num[0].length;
    return { kind: 'literal', value: Number(num[0]) };
  }
  if (ch === '"') {
    c.pos++;
    return parseTemplate(c, 'quoted');
  }
  if (ch === '(') {
    c.pos++;
    c.enter();
    const inner = parseExpr(c);
    c.expect(')');
    c.leave();
    return inner;
  }
  if (ch === '[') return parseTuple(c);
  if (ch === '{') return parseObject(c);
  if (c.startsWith('<<')) c.fail('heredocs inside expressions are not supported; use a quoted string');
  const start = c.pos;
  const name = c.ident();
  if (name === null) c.fail(`expected an expression${c.found()}`);
  if (name === 'true' || name === 'false') return { kind: 'literal', value: name === 'true' };
  if (name === 'null') return { kind: 'literal', value: null };
  c.skip();
  if (c.peek() === '(') {
    c.pos++;
    return parseCall(c, name, start);
  }
  return { kind: 'var', name };
}

function parseCall(c: Cursor, name: string, start: number): Expr {
  const args: Expr[] = [];
  let expandLast = false;
  c.enter();
  while (!c.eat(')')) {
    if (expandLast) c.fail(`'...' must follow the last argument of ${name}()`, start);
    args.push(parseExpr(c));
    if (c.eat('...')) expandLast = true;
    if (!c.eat(',')) {
      c.expect(')');
      break;
    }
  }
  c.leave();
  return { kind: 'call', name, args, expandLast };
}

/** `[for` / `{for` followed by `ident in` or `ident,` starts a for expression. */
function atFor(c: Cursor): boolean {
  const save = c.pos;
  const isFor = c.ident() === 'for' && c.ident() !== null && (c.eat(',') || c.ident() === 'in');
  c.pos = save;
  return isFor;
}

function parseFor(c: Cursor, object: boolean): Expr {
  c.ident(); // for
  let keyVar: string | null = null;
  let valVar = c.ident() ?? c.fail('expected a variable name after for');
  if (c.eat(',')) {
    keyVar = valVar;
    valVar = c.ident() ?? c.fail('expected a second variable name after ","');
  }
  if (c.ident() !== 'in') c.fail(`expected 'in'${c.found()}`);
  const collection = parseExpr(c);
  c.expect(':');
  let keyExpr: Expr | null = null;
  let valueExpr = parseExpr(c);
  if (object) {
    c.expect('=>');
    keyExpr = valueExpr;
    valueExpr = parseExpr(c);
  }
  const group = object && c.eat('...');
  let cond: Expr | null = null;
  if (c.peekIdent() === 'if') {
    c.ident();
    cond = parseExpr(c);
  }
  c.expect(object ? '}' : ']');
  return { kind: 'for', object, keyVar, valVar, collection, keyExpr, valueExpr, cond, group };
}

function parseTuple(c: Cursor): Expr {
  c.pos++;
  c.enter();
  let out: Expr;
  if (atFor(c)) out = parseFor(c, false);
  else {
    const items: Expr[] = [];
    while (!c.eat(']')) {
      items.push(parseExpr(c));
      if (!c.eat(',')) {
        c.expect(']');
        break;
      }
    }
    out = { kind: 'tuple', items };
  }
  c.leave();
  return out;
}

function parseObject(c: Cursor): Expr {
  c.pos++;
  c.enter();
  if (atFor(c)) {
    const out = parseFor(c, true);
    c.leave();
    return out;
  }
  const items: { key: Expr; value: Expr }[] = [];
  while (!c.eat('}')) {
    const save = c.pos;
    const bare = c.ident();
    let key: Expr;
    c.skip();
    // A bare name before `=`/`:` is the key itself, not a variable (as in HCL).
    if (bare !== null && (c.peek() === '=' || c.peek() === ':') && c.peek(1) !== '=') {
      key = { kind: 'literal', value: bare };
    } else {
      c.pos = save;
      key = parseExpr(c);
    }
    if (!c.eat('=') && !c.eat(':')) c.fail(`expected '=' after an object key${c.found()}`);
    items.push({ key, value: parseExpr(c) });
    c.eat(',');
  }
  c.leave();
  return { kind: 'object', items };
}

/** Parse one template body as hcl2json returns it (see the module comment). Throws ExprError. */
export function parseTemplateBody(text: string, maxDepth: number, depth = 0): Expr {
  if (!text.includes('{')) return { kind: 'literal', value: text };
  const cursor = new Cursor(text, maxDepth);
  cursor.depth = depth;
  return parseTemplate(cursor, 'body');
}
