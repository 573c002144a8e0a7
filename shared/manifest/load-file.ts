/**
 * One manifest file to a tree of blocks and attributes in source order, each attribute holding
 * its parsed expression. Order and positions come from the HCL scanner; values from hcl2json.
 * The result depends only on the content, so the compiler caches it by content hash.
 */
import type { Expr } from '../hcl/eval/ast.js';
import { ExprError } from '../hcl/eval/expr-error.js';
import { parseTemplateBody } from '../hcl/eval/parse-expression.js';
import { HclSyntaxError, type OutlineItem, scanHcl } from '../hcl/outline.js';
import { type Hcl2Json, parseHcl } from '../hcl/parse.js';
import { type CompileLimits, countTokens, nestingHazard } from './limits.js';

export interface AttrDecl {
  name: string;
  line: number;
  column: number;
  /** null when the expression did not parse (the error is in FileUnit.errors). */
  expr: Expr | null;
}

export interface BlockDecl {
  type: string;
  labels: string[];
  line: number;
  column: number;
  attrs: AttrDecl[];
  blocks: BlockDecl[];
}

export interface FileDiagnostic {
  line: number;
  column?: number;
  message: string;
}

export interface FileUnit {
  errors: FileDiagnostic[];
  attrs: AttrDecl[];
  blocks: BlockDecl[];
}

type Json = unknown;

function own(obj: Json, key: string): Json {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  return Object.hasOwn(obj, key) ? (obj as Record<string, Json>)[key] : undefined;
}

/** hcl2json's value (strings are template bodies) as an expression tree. */
function jsonToExpr(value: Json, depth: number, maxDepth: number): Expr {
  if (depth > maxDepth) throw new ExprError(`value nested deeper than ${maxDepth}`);
  if (typeof value === 'string') return parseTemplateBody(value, maxDepth, depth);
  if (value === null || typeof value === 'number' || typeof value === 'boolean')
    return { kind: 'literal', value };
  if (Array.isArray(value))
    return { kind: 'tuple', items: value.map((v) => jsonToExpr(v, depth + 1, maxDepth)) };
  if (typeof value === 'object') {
    const items = Object.entries(value as Record<string, Json>).map(([k, v]) => ({
      key: parseTemplateBody(k, maxDepth, depth),
      value: jsonToExpr(v, depth + 1, maxDepth),
    }));
    return { kind: 'object', items };
  }
  throw new ExprError(`unexpected value from the HCL parser: ${typeof value}`);
}

function convert(
  items: OutlineItem[],
  body: Json,
  depth: number,
  limits: CompileLimits,
  unit: FileUnit,
): FileUnit {
  const seen = new Map<string, number>();
  const out: FileUnit = { errors: unit.errors, attrs: [], blocks: [] };
  for (const item of items) {
    if (item.kind === 'attribute') {
      const raw = own(body, item.name);
      let expr: Expr | null = null;
      try {
        if (raw === undefined)
          throw new ExprError('the HCL parser returned no value (please report this manifest)');
        expr = jsonToExpr(raw, depth, limits.maxDepth);
      } catch (err) {
        if (!(err instanceof ExprError)) throw err;
        unit.errors.push({ line: item.line, column: item.column, message: `${item.name}: ${err.message}` });
      }
      out.attrs.push({ name: item.name, line: item.line, column: item.column, expr });
      continue;
    }
    if (depth + 1 > limits.maxDepth) {
      unit.errors.push({
        line: item.line,
        column: item.column,
        message: `blocks nested deeper than ${limits.maxDepth}`,
      });
      continue;
    }
    const key = [item.type, ...item.labels].join('\0');
    const occurrence = seen.get(key) ?? 0;
    seen.set(key, occurrence + 1);
    let inner: Json = own(body, item.type);
    for (const label of item.labels) inner = own(inner, label);
    inner = Array.isArray(inner) ? inner[occurrence] : undefined;
    const nested = convert(item.items, inner ?? {}, depth + 1, limits, unit);
    out.blocks.push({
      type: item.type,
      labels: item.labels,
      line: item.line,
      column: item.column,
      ...nested,
    });
  }
  return out;
}

/**
 * Parses one file's content. Never throws for bad content: problems land in `errors`. Throws
 * HclParserFailure when hcl2json (run by `hcl2json`, default in this thread) died or timed out.
 */
export async function loadFile(
  path: string,
  content: string,
  limits: CompileLimits,
  hcl2json?: Hcl2Json,
): Promise<FileUnit> {
  const fail = (line: number, message: string, column?: number): FileUnit => ({
    errors: [column === undefined ? { line, message } : { line, column, message }],
    attrs: [],
    blocks: [],
  });
  const bytes = Buffer.byteLength(content, 'utf8');
  if (bytes > limits.maxFileBytes) {
    return fail(1, `file is ${bytes} bytes, more than the limit of ${limits.maxFileBytes}`);
  }
  if (countTokens(content, limits.maxTokensPerFile) > limits.maxTokensPerFile) {
    return fail(1, `file has more than ${limits.maxTokensPerFile} tokens; split it into several files`);
  }
  const hazard = nestingHazard(content);
  if (hazard) return fail(1, hazard);
  let items: OutlineItem[] | undefined;
  try {
    items = scanHcl(content);
  } catch (err) {
    if (!(err instanceof HclSyntaxError)) throw err;
    // Deep nesting is refused before hcl2json sees it: its parser slows down badly on it.
    if (/nest/.test(err.message)) return fail(err.line, err.message, err.column);
  }
  const parsed = await parseHcl(path, content, items, hcl2json);
  if (!parsed.ok) return fail(parsed.error.line, parsed.error.message, parsed.error.column);
  if (!items) return fail(1, 'the HCL scanner and parser disagree about this file (please report it)');
  return convert(items, parsed.json, 0, limits, { errors: [], attrs: [], blocks: [] });
}
