/**
 * HCL to JSON through @cdktf/hcl2json, with its errors turned into file/line/column.
 *
 * hcl2json rejects a one-line block holding several attributes (`mise "x" { a = 1  b = 2 }`),
 * which the product's documented examples use, so such blocks are split onto separate lines first and
 * error positions are mapped back to the original source.
 */
import { HclSyntaxError, type OutlineItem, scanHcl } from './outline.js';
import { parseInThread, type RawParse } from './parser-pool.js';

/** One hcl2json call: in this thread (the default) or through a ParserPool. */
export type Hcl2Json = (file: string, text: string) => Promise<RawParse>;

export interface HclParseError {
  file: string;
  line: number;
  column: number;
  message: string;
}

export type HclParseResult =
  | { ok: true; json: Record<string, unknown> }
  | { ok: false; error: HclParseError };

interface Position {
  line: number;
  column: number;
}

/** Offsets before which a newline makes one-line multi-attribute blocks acceptable to HCL. */
function splitOffsets(items: OutlineItem[], out: number[]): number[] {
  for (const item of items) {
    if (item.kind !== 'block') continue;
    const oneLine =
      item.line === item.endLine && item.items.length > 1 && item.items.every((i) => i.kind === 'attribute');
    if (oneLine) {
      for (const inner of item.items) out.push(inner.offset);
      out.push(item.endOffset);
    } else splitOffsets(item.items, out);
  }
  return out;
}

/** Inserts newlines at `offsets`; returns the text and a map from new positions to original ones. */
function insertNewlines(source: string, offsets: number[]): { text: string; map: (p: Position) => Position } {
  const sorted = [...offsets].sort((a, b) => a - b);
  // newLineOrigin[i] = where new line i+1 starts in the original: its line and column offset.
  const newLineOrigin: { line: number; columnShift: number }[] = [{ line: 1, columnShift: 0 }];
  let text = '';
  let from = 0;
  let line = 1;
  let lineStart = 0;
  const advanceTo = (offset: number): void => {
    for (let i = from; i < offset; i++) {
      if (source[i] === '\n') {
        line++;
        lineStart = i + 1;
        newLineOrigin.push({ line, columnShift: 0 });
      }
    }
  };
  for (const offset of sorted) {
    advanceTo(offset);
    text += source.slice(from, offset) + '\n';
    from = offset;
    newLineOrigin.push({ line, columnShift: offset - lineStart });
  }
  advanceTo(source.length);
  text += source.slice(from);
  const map = (p: Position): Position => {
    const origin = newLineOrigin[p.line - 1];
    if (!origin) return p;
    return { line: origin.line, column: p.column + origin.columnShift };
  };
  return { text, map };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * hcl2json throws `parse config: [FILE:L,C-L,C: Summary; Detail. FILE:L,C-C: ...]`.
 * The first diagnostic is the root cause; later ones are usually its echoes.
 */
function firstDiagnostic(file: string, raw: string): { position: Position; message: string } | null {
  const re = new RegExp(`${escapeRegExp(file)}:(\\d+),(\\d+)(?:-(?:\\d+,)?\\d+)?: `, 'g');
  const first = re.exec(raw);
  if (!first) return null;
  const start = first.index + first[0].length;
  const second = re.exec(raw);
  let message = raw.slice(start, second ? second.index : raw.length).trim();
  message = message.replace(/\]$/, '').trim();
  return { position: { line: Number(first[1]), column: Number(first[2]) }, message };
}

/**
 * Parses HCL native syntax into hcl2json's JSON shape (blocks as `{type: {label: [body]}}`,
 * expressions as `"${...}"` strings). Pass `items` from scanHcl when you already have them, and
 * `hcl2json` to parse elsewhere than in this thread (its HclParserFailure passes through).
 */
export async function parseHcl(
  file: string,
  source: string,
  items?: OutlineItem[],
  hcl2json: Hcl2Json = parseInThread,
): Promise<HclParseResult> {
  let scanned = items ?? null;
  let scanError: HclSyntaxError | null = null;
  if (!scanned) {
    try {
      scanned = scanHcl(source);
    } catch (err) {
      if (!(err instanceof HclSyntaxError)) throw err;
      scanError = err;
    }
  }
  const offsets = scanned ? splitOffsets(scanned, []) : [];
  const { text, map } =
    offsets.length > 0 ? insertNewlines(source, offsets) : { text: source, map: (p: Position) => p };
  const parsed = await hcl2json(file, text);
  const scanFailure = (e: HclSyntaxError): HclParseResult => ({
    ok: false,
    error: { file, line: e.line, column: e.column, message: e.message },
  });
  if (parsed.ok) return scanError ? scanFailure(scanError) : { ok: true, json: parsed.value };
  const diag = firstDiagnostic(file, parsed.message);
  if (diag) {
    const at = map(diag.position);
    return { ok: false, error: { file, line: at.line, column: at.column, message: diag.message } };
  }
  if (scanError) return scanFailure(scanError);
  const message = parsed.message.replace(/^parse config: /, '');
  return { ok: false, error: { file, line: 1, column: 1, message } };
}
