/**
 * A structural scanner for HCL native syntax. @cdktf/hcl2json returns JSON with sorted keys and
 * no positions; this recovers what it loses: source order of blocks and attributes, and the line
 * and column of each (outline.ts shapes the items it finds). It does not evaluate expressions — it
 * only skips them precisely enough to know where each one ends (comments, strings with templates,
 * heredocs, brackets).
 *
 * Hostile input: the scan is a single forward pass, bracket nesting lives on an explicit stack
 * and block recursion is capped, so no input can hang it or blow the call stack.
 */

export class HclSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(message);
    this.name = 'HclSyntaxError';
    this.line = line;
    this.column = column;
  }
}

/** Deeper nesting than this is refused rather than risked. */
export const MAX_HCL_NESTING = 100;

/** One entry of a body in source order, with the extra positions parse.ts needs to rewrite it. */
export type OutlineItem =
  | { kind: 'attribute'; name: string; line: number; column: number; offset: number }
  | {
      kind: 'block';
      type: string;
      labels: string[];
      line: number;
      column: number;
      offset: number;
      endLine: number;
      /** Offset of the closing brace. */
      endOffset: number;
      items: OutlineItem[];
    };

// Plain comparisons, not regexes: these run once per character of the file.
const isLetter = (c: string): boolean =>
  (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c > '\u007f';
const isIdentStart = (c: string): boolean => c !== '' && isLetter(c);
const isIdentPart = (c: string): boolean => c !== '' && (isLetter(c) || (c >= '0' && c <= '9') || c === '-');
const CLOSER: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

type Frame = '(' | '[' | '{' | 'template' | 'string';

class Scanner {
  pos = 0;
  line = 1;
  lineStart = 0;
  constructor(readonly src: string) {
    // A UTF-8 byte order mark is not content (hcl2json skips it too).
    if (src.startsWith('\uFEFF')) {
      this.pos = 1;
      this.lineStart = 1;
    }
  }

  get col(): number {
    return this.pos - this.lineStart + 1;
  }
  peek(ahead = 0): string {
    return this.src[this.pos + ahead] ?? '';
  }
  advance(): void {
    if (this.src[this.pos] === '\n') {
      this.line++;
      this.lineStart = this.pos + 1;
    }
    this.pos++;
  }
  fail(message: string, line = this.line, column = this.col): never {
    throw new HclSyntaxError(message, line, column);
  }

  /** Skips spaces, tabs, CRs and comments; newlines too when `newlines` is set. */
  skipTrivia(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) this.advance();
      else if (c === '#' || (c === '/' && this.peek(1) === '/')) {
        while (this.pos < this.src.length && this.peek() !== '\n') this.advance();
      } else if (c === '/' && this.peek(1) === '*') {
        const line = this.line;
        const column = this.col;
        const end = this.src.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated /* comment', line, column);
        while (this.pos < end + 2) this.advance();
      } else return;
    }
  }

  readIdent(): string {
    const start = this.pos;
    while (this.pos < this.src.length && isIdentPart(this.peek())) this.advance();
    return this.src.slice(start, this.pos);
  }

  /** At an identifier: is it followed (on the same line) by `=` that is not `==` or `=>`? */
  identThenAssign(): boolean {
    let i = this.pos;
    while (i < this.src.length && isIdentPart(this.src[i] ?? '')) i++;
    while (this.src[i] === ' ' || this.src[i] === '\t') i++;
    return this.src[i] === '=' && this.src[i + 1] !== '=' && this.src[i + 1] !== '>';
  }

  /** `<<EOF` / `<<-EOF` followed by a newline: consume through the closing marker. */
  tryHeredoc(): boolean {
    if (this.peek(1) !== '<') return false;
    const m = /^<<-?([A-Za-z_][A-Za-z0-9_-]*)\r?\n/.exec(this.src.slice(this.pos, this.pos + 260));
    if (!m || m[1] === undefined) return false;
    const line = this.line;
    const column = this.col;
    const marker = m[1];
    while (this.peek() !== '\n') this.advance();
    for (;;) {
      if (this.pos >= this.src.length) this.fail(`unterminated heredoc, expected ${marker}`, line, column);
      this.advance(); // the newline ending the previous line
      let end = this.src.indexOf('\n', this.pos);
      if (end < 0) end = this.src.length;
      if (this.src.slice(this.pos, end).trim() === marker) {
        while (this.pos < end) this.advance();
        return true;
      }
      while (this.pos < end) this.advance();
    }
  }

  /**
   * Skips one expression (or a quoted string when `initial` is 'string'). It ends at a newline or
   * EOF outside brackets, at a `}` closing the enclosing block (not consumed), or where a new
   * `name =` starts on the same line (one-line blocks with several attributes).
   */
  skipExpression(initial: Frame | null): void {
    const stack: { frame: Frame; line: number; column: number }[] = [];
    if (initial) {
      stack.push({ frame: initial, line: this.line, column: this.col });
      this.advance();
    }
    let sawToken = false;
    for (;;) {
      const top = stack[stack.length - 1];
      if (stack.length > MAX_HCL_NESTING) this.fail(`nesting deeper than ${MAX_HCL_NESTING}`);
      const c = this.peek();
      if (top?.frame === 'string') {
        if (c === '' || c === '\n') this.fail('unterminated string', top.line, top.column);
        if (c === '\\') {
          this.advance();
          if (this.peek() === '\n' || this.peek() === '') continue;
          this.advance();
        } else if (c === '"') {
          this.advance();
          stack.pop();
          if (stack.length === 0 && initial) return;
        } else if ((c === '$' || c === '%') && this.peek(1) === c && this.peek(2) === '{') {
          this.advance();
          this.advance();
          this.advance();
        } else if ((c === '$' || c === '%') && this.peek(1) === '{') {
          stack.push({ frame: 'template', line: this.line, column: this.col });
          this.advance();
          this.advance();
        } else this.advance();
        continue;
      }
      this.skipTrivia(stack.length > 0);
      const d = this.peek();
      const line = this.line;
      const column = this.col;
      if (d === '' || d === '\n') {
        if (stack.length === 0) return;
        const open = stack[stack.length - 1]!;
        this.fail(`unclosed ${open.frame === 'template' ? '${' : open.frame}`, open.line, open.column);
      }
      if (d === '"') {
        stack.push({ frame: 'string', line, column });
        this.advance();
      } else if (d === '<' && this.tryHeredoc()) {
        // consumed
      } else if (d === '(' || d === '[' || d === '{') {
        stack.push({ frame: d, line, column });
        this.advance();
      } else if (d === ')' || d === ']' || d === '}') {
        if (!top) {
          if (d === '}') return;
          this.fail(`unexpected '${d}'`);
        }
        const want = top.frame === 'template' ? '}' : CLOSER[top.frame];
        if (d !== want) this.fail(`unexpected '${d}', expected '${want}'`);
        stack.pop();
        this.advance();
      } else if (isIdentStart(d)) {
        if (stack.length === 0 && sawToken && this.identThenAssign()) return;
        this.readIdent();
      } else this.advance();
      sawToken = true;
    }
  }

  /** A body: attributes and blocks until EOF (top level) or the closing `}` (inside a block). */
  body(depth: number, closeLine: number, closeColumn: number): OutlineItem[] {
    if (depth > MAX_HCL_NESTING) this.fail(`blocks nested deeper than ${MAX_HCL_NESTING}`);
    const items: OutlineItem[] = [];
    for (;;) {
      this.skipTrivia(true);
      const c = this.peek();
      if (c === '') {
        if (depth === 0) return items;
        this.fail("unclosed block: no matching '}'", closeLine, closeColumn);
      }
      if (c === '}') {
        if (depth === 0) this.fail("unexpected '}'");
        return items;
      }
      if (!isIdentStart(c)) this.fail(`expected an attribute or block name, found '${c}'`);
      const line = this.line;
      const column = this.col;
      const offset = this.pos;
      if (this.identThenAssign()) {
        const name = this.readIdent();
        this.skipTrivia(false);
        this.advance(); // '='
        this.skipTrivia(false);
        if (this.peek() === '\n' || this.peek() === '' || this.peek() === '}') {
          this.fail(`attribute '${name}' has no value`);
        }
        this.skipExpression(null);
        items.push({ kind: 'attribute', name, line, column, offset });
        continue;
      }
      const type = this.readIdent();
      const labels: string[] = [];
      for (;;) {
        this.skipTrivia(false);
        const l = this.peek();
        if (l === '"') {
          const start = this.pos;
          this.skipExpression('string');
          labels.push(unquote(this.src.slice(start, this.pos)));
        } else if (isIdentStart(l)) labels.push(this.readIdent());
        else break;
      }
      if (this.peek() !== '{') {
        this.fail(`expected '=' or '{' after '${[type, ...labels].join(' ')}'`);
      }
      const openLine = this.line;
      const openColumn = this.col;
      this.advance();
      const inner = this.body(depth + 1, openLine, openColumn);
      const endLine = this.line;
      const endOffset = this.pos;
      this.advance(); // '}'
      items.push({ kind: 'block', type, labels, line, column, offset, endLine, endOffset, items: inner });
    }
  }
}

/** Label text without quotes; escapes are resolved the simple way (labels are plain names). */
function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/g, (_, ch: string) => {
    if (ch === 'n') return '\n';
    if (ch === 't') return '\t';
    return ch;
  });
}

/** The raw items of `source`, in order, with offsets (throws HclSyntaxError). */
export function scanHcl(source: string): OutlineItem[] {
  return new Scanner(source).body(0, 1, 1);
}
