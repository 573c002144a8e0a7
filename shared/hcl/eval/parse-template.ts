/**
 * Templates: literal text, `${ expr }` interpolations and `%{ if }`/`%{ for }` directives, with
 * `~` strip markers. `body` mode reads hcl2json's strings (no backslash escapes, ends at the end);
 * `quoted` mode reads a `"..."` string inside an expression (escapes, ends at the closing quote).
 */
import type { Expr } from './ast.js';
import { type Cursor, parseExpr } from './parse-expression.js';

type Mode = 'body' | 'quoted';
type End = 'end' | 'else' | 'endif' | 'endfor';
type Literal = { kind: 'literal'; value: string };

interface State {
  mode: Mode;
  /** The literal most recently emitted, for `${~` to trim. */
  last: Literal | null;
  /** Set by `~}`: the next literal loses its leading whitespace. */
  stripNext: boolean;
}

/** Characters that never start anything special, read in one go. */
const PLAIN = /[^$%\\"\n]+/y;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

function readEscape(c: Cursor): string {
  const e = c.peek(1);
  const simple = ESCAPES[e];
  if (simple !== undefined) {
    c.pos += 2;
    return simple;
  }
  const width = e === 'u' ? 4 : e === 'U' ? 8 : 0;
  const hex = c.src.slice(c.pos + 2, c.pos + 2 + width);
  if (width === 0 || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) c.fail(`invalid escape '\\${e}'`);
  const code = Number.parseInt(hex, 16);
  if (code > 0x10ffff) c.fail(`invalid escape '\\${e}${hex}'`);
  c.pos += 2 + width;
  return String.fromCodePoint(code);
}

/** Reads `}` or `~}` closing an interpolation or directive. */
function closeSequence(c: Cursor, st: State): void {
  c.skip();
  if (c.peek() === '~') {
    c.pos++;
    st.stripNext = true;
  }
  c.expect('}');
}

function openSequence(c: Cursor, st: State): void {
  c.pos += 2;
  if (c.peek() === '~') {
    c.pos++;
    if (st.last) st.last.value = st.last.value.trimEnd();
  }
}

function emitText(parts: Expr[], st: State, text: string): void {
  let value = text;
  if (st.stripNext) {
    value = value.trimStart();
    st.stripNext = false;
  }
  const lit: Literal = { kind: 'literal', value };
  parts.push(lit);
  st.last = lit;
}

function emitExpr(parts: Expr[], st: State, expr: Expr): void {
  parts.push(expr);
  st.last = null;
  st.stripNext = false;
}

function parseDirective(c: Cursor, st: State, parts: Expr[]): End | null {
  const start = c.pos;
  openSequence(c, st);
  const keyword = c.ident();
  if (keyword === 'else' || keyword === 'endif' || keyword === 'endfor') {
    closeSequence(c, st);
    return keyword;
  }
  c.enter();
  if (keyword === 'if') {
    const cond = parseExpr(c);
    closeSequence(c, st);
    const then = parseParts(c, st);
    let otherwise: Expr | null = null;
    let end = then.end;
    if (end === 'else') {
      const rest = parseParts(c, st);
      otherwise = toTemplate(rest.parts);
      end = rest.end;
    }
    if (end !== 'endif') c.fail('%{ if } without a matching %{ endif }', start);
    emitExpr(parts, st, { kind: 'tplIf', cond, whenTrue: toTemplate(then.parts), whenFalse: otherwise });
  } else if (keyword === 'for') {
    let keyVar: string | null = null;
    let valVar = c.ident() ?? c.fail('expected a variable name after %{ for');
    if (c.eat(',')) {
      keyVar = valVar;
      valVar = c.ident() ?? c.fail('expected a second variable name after ","');
    }
    if (c.ident() !== 'in') c.fail(`expected 'in'${c.found()}`);
    const collection = parseExpr(c);
    closeSequence(c, st);
    const body = parseParts(c, st);
    if (body.end !== 'endfor') c.fail('%{ for } without a matching %{ endfor }', start);
    emitExpr(parts, st, { kind: 'tplFor', keyVar, valVar, collection, body: toTemplate(body.parts) });
  } else {
    c.fail(
      `unknown template directive '${keyword ?? c.peek()}' (expected if, else, endif, for, endfor)`,
      start,
    );
  }
  c.leave();
  return null;
}

function parseParts(c: Cursor, st: State): { parts: Expr[]; end: End } {
  const parts: Expr[] = [];
  let text = '';
  const flush = (): void => {
    if (text !== '') emitText(parts, st, text);
    text = '';
  };
  for (;;) {
    const ch = c.peek();
    if (ch === '') {
      if (st.mode === 'quoted') c.fail('unterminated string');
      flush();
      return { parts, end: 'end' };
    }
    if (st.mode === 'quoted' && ch === '"') {
      c.pos++;
      flush();
      return { parts, end: 'end' };
    }
    if (st.mode === 'quoted' && ch === '\n') c.fail('a quoted string cannot span lines; use \\n');
    if (st.mode === 'quoted' && ch === '\\') {
      text += readEscape(c);
    } else if ((ch === '$' || ch === '%') && c.peek(1) === ch && c.peek(2) === '{') {
      text += `${ch}{`;
      c.pos += 3;
    } else if (ch === '$' && c.peek(1) === '{') {
      flush();
      openSequence(c, st);
      const expr = parseExpr(c);
      closeSequence(c, st);
      emitExpr(parts, st, expr);
    } else if (ch === '%' && c.peek(1) === '{') {
      flush();
      const end = parseDirective(c, st, parts);
      if (end) return { parts, end };
    } else {
      PLAIN.lastIndex = c.pos + 1;
      const run = PLAIN.exec(c.src);
      const end = run ? run.index + run[0].length : c.pos + 1;
      text += c.src.slice(c.pos, end);
      c.pos = end;
    }
  }
}

function toTemplate(parts: Expr[]): Expr {
  if (parts.length === 0) return { kind: 'literal', value: '' };
  if (parts.length === 1 && parts[0]?.kind === 'literal') return parts[0];
  return { kind: 'template', parts };
}

/** Parses a template from the cursor (after the opening quote in `quoted` mode). */
export function parseTemplate(c: Cursor, mode: Mode): Expr {
  const start = c.pos;
  const st: State = { mode, last: null, stripNext: false };
  c.enter();
  const { parts, end } = parseParts(c, st);
  if (end !== 'end') c.fail(`%{ ${end} } without a matching opening directive`, start);
  c.leave();
  const only = parts[0];
  // As in HCL, "${x}" alone yields x itself: a list stays a list, a number a number.
  if (
    parts.length === 1 &&
    only &&
    only.kind !== 'literal' &&
    only.kind !== 'tplIf' &&
    only.kind !== 'tplFor'
  ) {
    return { kind: 'wrap', expr: only };
  }
  return toTemplate(parts);
}
