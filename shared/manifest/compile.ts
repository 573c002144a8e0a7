/**
 * The manifest compiler's public face: manifest files in, desired state and diagnostics out.
 * See docs/manifests.md for the language and ManifestCompiler.ts for how it works.
 */
import type { DesiredState, SourceLocation } from '../types.js';

/** One manifest file; `path` is relative to the repository root, with `/` separators. */
export interface ManifestFile {
  path: string;
  content: string;
}

export interface CompileDiagnostic {
  file: string;
  line: number;
  column?: number;
  message: string;
}

export interface CompileResult {
  /** Tasks sorted by name. Only meaningful when `errors` is empty. */
  state: DesiredState;
  /** Where each task (`name`) and step (`name/step`) was declared. */
  sources: Record<string, SourceLocation>;
  errors: CompileDiagnostic[];
  warnings: CompileDiagnostic[];
}

export { type CompileLimits, DEFAULT_COMPILE_LIMITS } from './limits.js';
export { ManifestCompiler } from './manifest-compiler.js';
export { ManifestReadError, readManifestDir } from './read-manifest-dir.js';

/** `file:line:col: message`, or `file:line: message` without a column. */
export function formatDiagnostic(d: CompileDiagnostic, severity: 'error' | 'warning' = 'error'): string {
  const where = d.column === undefined ? `${d.file}:${d.line}` : `${d.file}:${d.line}:${d.column}`;
  return `${where}: ${severity === 'warning' ? 'warning: ' : ''}${d.message}`;
}
