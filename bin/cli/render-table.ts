/**
 * Aligned text tables for `fluke get` and `describe`, without dependencies: a header row, columns
 * two spaces apart, no trailing spaces. Cells are flattened to one line and truncated with "…";
 * when a width is given (a terminal), the widest columns give way until the table fits.
 */

export interface TableOptions {
  /** No cell is wider than this (default 60). */
  maxCell?: number;
  /** Fit the whole table in this many columns, shrinking the widest columns first. */
  width?: number | null;
  /** Left margin, for tables nested in `describe` output. */
  indent?: string;
}

/** The narrowest a column is shrunk to when fitting a width. */
const MIN_COLUMN = 6;
const GAP = '  ';

export type Cell = string | number | boolean | null | undefined;

/** One line: control characters (newlines, tabs) become spaces; null and undefined become "-". */
export function cellText(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  let out = '';
  let inControl = false;
  for (const ch of String(value)) {
    const code = ch.charCodeAt(0);
    const control = code < 0x20 || code === 0x7f;
    if (!control) out += ch;
    else if (!inControl) out += ' ';
    inControl = control;
  }
  return out.trimEnd() || '-';
}

/** Width in code points, so a multi-byte character counts as one column. */
export function textWidth(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function truncate(s: string, width: number): string {
  if (textWidth(s) <= width) return s;
  if (width <= 1) return '…'.slice(0, width);
  return `${Array.from(s)
    .slice(0, width - 1)
    .join('')}…`;
}

export function renderTable(
  headers: readonly string[],
  rows: readonly Cell[][],
  options: TableOptions = {},
): string {
  const maxCell = options.maxCell ?? 60;
  const indent = options.indent ?? '';
  const text = [
    headers.map((h) => h.toUpperCase()),
    ...rows.map((r) => headers.map((_, i) => cellText(r[i]))),
  ];
  const widths = headers.map((_, c) =>
    Math.min(maxCell, Math.max(...text.map((r) => textWidth(r[c] ?? '')))),
  );
  if (options.width) fit(widths, options.width - textWidth(indent) - GAP.length * (headers.length - 1));
  return text
    .map((r) => {
      const cells = r.map((cell, c) => {
        const w = widths[c] ?? 0;
        const t = truncate(cell, w);
        return c === r.length - 1 ? t : t + ' '.repeat(w - textWidth(t));
      });
      return `${indent}${cells.join(GAP)}`.trimEnd();
    })
    .join('\n')
    .concat('\n');
}

/** Shrinks the widest column, one character at a time, until the sum fits (or nothing can give). */
function fit(widths: number[], budget: number): void {
  let total = widths.reduce((a, b) => a + b, 0);
  while (total > budget) {
    let widest = -1;
    for (let c = 0; c < widths.length; c++)
      if ((widths[c] ?? 0) > MIN_COLUMN && (widest < 0 || (widths[c] ?? 0) > (widths[widest] ?? 0)))
        widest = c;
    if (widest < 0) return;
    widths[widest] = (widths[widest] ?? 0) - 1;
    total--;
  }
}

/** `Key:  value` lines with the values aligned, for the top of `describe`. */
export function renderFields(fields: readonly [string, Cell][], indent = ''): string {
  const width = Math.max(...fields.map(([k]) => textWidth(k))) + 1;
  return fields
    .map(([k, v]) => {
      const key = `${k}:`.padEnd(width + 1);
      // Multi-line values (a shell command) keep their lines, aligned under the first.
      const lines = (v === null || v === undefined || v === '' ? '-' : String(v)).split('\n');
      return lines
        .map((l, i) => `${indent}${i === 0 ? key : ' '.repeat(width + 1)} ${l}`.trimEnd())
        .join('\n');
    })
    .join('\n')
    .concat('\n');
}
