/** The expression tree Fluke's HCL parser builds and its evaluator walks. */
import type { Value } from './value.js';

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||';

export type Expr =
  | { kind: 'literal'; value: Value }
  /** A template with text: always a string. */
  | { kind: 'template'; parts: Expr[] }
  /** A template that is one interpolation, `"${x}"`: the value itself, unconverted (as in HCL). */
  | { kind: 'wrap'; expr: Expr }
  | { kind: 'var'; name: string }
  | { kind: 'getAttr'; target: Expr; name: string }
  | { kind: 'index'; target: Expr; key: Expr }
  /** `list[*].each` / `list.*.each`; `each` refers to the element through `anon`. */
  | { kind: 'splat'; target: Expr; each: Expr }
  | { kind: 'anon' }
  | { kind: 'call'; name: string; args: Expr[]; expandLast: boolean }
  | { kind: 'unary'; op: '-' | '!'; operand: Expr }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr }
  | { kind: 'cond'; cond: Expr; whenTrue: Expr; whenFalse: Expr }
  | { kind: 'tuple'; items: Expr[] }
  | { kind: 'object'; items: { key: Expr; value: Expr }[] }
  | {
      kind: 'for';
      object: boolean;
      keyVar: string | null;
      valVar: string;
      collection: Expr;
      keyExpr: Expr | null;
      valueExpr: Expr;
      cond: Expr | null;
      group: boolean;
    }
  /** `%{ if }` inside a template. */
  | { kind: 'tplIf'; cond: Expr; whenTrue: Expr; whenFalse: Expr | null }
  /** `%{ for }` inside a template. */
  | { kind: 'tplFor'; keyVar: string | null; valVar: string; collection: Expr; body: Expr };
