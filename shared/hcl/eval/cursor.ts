/**
 * The expression parser's position in its source: whitespace and comments between tokens, token
 * and identifier matching, the nesting cap that keeps hostile input off the call stack, and
 * errors that carry the offset where they happened.
 */
import { ExprError } from './expr-error.js';

const IDENT = /[A-Za-z_][A-Za-z0-9_-]*/y;

export class Cursor {
  pos = 0;
  depth = 0;
  constructor(
    readonly src: string,
    readonly maxDepth: number,
  ) {}

  fail(message: string, at = this.pos): never {
    throw new ExprError(message, at);
  }
  peek(ahead = 0): string {
    return this.src[this.pos + ahead] ?? '';
  }
  startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }
  enter(): void {
    if (++this.depth > this.maxDepth) this.fail(`expression nested deeper than ${this.maxDepth}`);
  }
  leave(): void {
    this.depth--;
  }
  /** Whitespace, newlines and comments separate tokens inside an expression. */
  skip(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else if (c === '#' || (c === '/' && this.peek(1) === '/')) {
        const nl = this.src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? this.src.length : nl;
      } else if (c === '/' && this.peek(1) === '*') {
        const end = this.src.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 2;
      } else return;
    }
  }
  eat(token: string): boolean {
    this.skip();
    if (!this.startsWith(token)) return false;
    this.pos += token.length;
    return true;
  }
  expect(token: string): void {
    if (!this.eat(token)) this.fail(`expected '${token}'${this.found()}`);
  }
  found(): string {
    return this.pos >= this.src.length
      ? ' at the end'
      : `, found '${this.src.slice(this.pos, this.pos + 10)}'`;
  }
  ident(): string | null {
    this.skip();
    IDENT.lastIndex = this.pos;
    const m = IDENT.exec(this.src);
    if (!m) return null;
    this.pos += m[0].length;
    return m[0];
  }
  /** The identifier ahead, without consuming it. */
  peekIdent(): string | null {
    const save = this.pos;
    const id = this.ident();
    this.pos = save;
    return id;
  }
}
