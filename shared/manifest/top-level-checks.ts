/**
 * What the compiler checks at the top level of manifest files before any task is built: the
 * locals blocks (no labels, no nested blocks, each name declared once across every file) and
 * the header of each task block. Also the diagnostic helpers the compiler shares.
 */
import type { CompileDiagnostic } from './compile.js';
import type { BlockDecl, FileUnit } from './load-file.js';
import type { LocalDecl } from './local-table.js';
import { IDENTIFIER } from './manifest-block-reader.js';

export const at = (file: string, line: number) => `${file}:${line}`;

export function diag(
  file: string,
  line: number,
  column: number | undefined,
  message: string,
): CompileDiagnostic {
  return column === undefined ? { file, line, message } : { file, line, column, message };
}

export function byPosition(a: CompileDiagnostic, b: CompileDiagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || (a.column ?? 0) - (b.column ?? 0);
}

export function collectLocals(
  units: { path: string; unit: FileUnit }[],
  errors: CompileDiagnostic[],
): Map<string, LocalDecl> {
  const decls = new Map<string, LocalDecl>();
  for (const { path, unit } of units) {
    for (const block of unit.blocks) {
      if (block.type !== 'locals') continue;
      if (block.labels.length > 0)
        errors.push(diag(path, block.line, block.column, 'a locals block takes no label'));
      for (const b of block.blocks) {
        errors.push(
          diag(
            path,
            b.line,
            b.column,
            `locals: unexpected block "${b.type}"; locals holds only name = value`,
          ),
        );
      }
      for (const attr of block.attrs) {
        const first = decls.get(attr.name);
        if (first) {
          const where = `at ${at(first.file, first.attr.line)} and ${at(path, attr.line)}`;
          errors.push(diag(path, attr.line, attr.column, `local "${attr.name}" is declared twice: ${where}`));
        } else decls.set(attr.name, { file: path, attr });
      }
    }
  }
  return decls;
}

export function checkTaskHeader(block: BlockDecl, path: string, errors: CompileDiagnostic[]): boolean {
  if (block.labels.length !== 1) {
    errors.push(
      diag(
        path,
        block.line,
        block.column,
        'a task block takes exactly one name, as in task "deploy_app" { ... }',
      ),
    );
    return false;
  }
  const name = block.labels[0] as string;
  if (!IDENTIFIER.test(name)) {
    errors.push(
      diag(
        path,
        block.line,
        block.column,
        `task name "${name}" is not an identifier (letters, digits, _ and -, at most 128)`,
      ),
    );
    return false;
  }
  return true;
}
