/** Bounds on what one compile accepts, so a hostile repository gets an error, never a hang. */
export interface CompileLimits {
  /** Manifest files per repository. */
  maxFiles: number;
  /** Bytes per manifest file. */
  maxFileBytes: number;
  /** Bytes over all manifest files. */
  maxTotalBytes: number;
  /**
   * Structural tokens (`, = - ! ( [ {`, `${`, `%{` and newlines) per file. hcl2json's WASM parser takes
   * ~40-80 µs per list element or interpolation, so this caps its time per file (~2-4 s).
   */
  maxTokensPerFile: number;
  /** Tasks over all files. */
  maxTasks: number;
  /** Steps per task. */
  maxStepsPerTask: number;
  /** Nesting of blocks, brackets and templates (the HCL scanner itself refuses beyond 100). */
  maxDepth: number;
  /** Evaluation steps per expression (one per node visited or element built). */
  maxEvalSteps: number;
  /** Evaluation steps over the whole compile. */
  maxTotalEvalSteps: number;
  /** Characters in any string an expression builds. */
  maxStringLength: number;
}

export const DEFAULT_COMPILE_LIMITS: Readonly<CompileLimits> = Object.freeze({
  maxFiles: 2_000,
  maxFileBytes: 1024 * 1024,
  maxTotalBytes: 64 * 1024 * 1024,
  maxTokensPerFile: 50_000,
  maxTasks: 10_000,
  maxStepsPerTask: 200,
  maxDepth: 64,
  maxEvalSteps: 100_000,
  maxTotalEvalSteps: 20_000_000,
  maxStringLength: 1024 * 1024,
});

export function resolveLimits(partial: Partial<CompileLimits> = {}): CompileLimits {
  return { ...DEFAULT_COMPILE_LIMITS, ...partial };
}

/** Counts the tokens `maxTokensPerFile` bounds, stopping early once over `max`. */
export function countTokens(source: string, max: number): number {
  let n = 0;
  for (let i = 0; i < source.length && n <= max; i++) {
    const c = source.charCodeAt(i);
    // , = \n - ! ( [ {   and  ${  %{  (each costs hcl2json time; unary chains nest without brackets)
    if (c === 44 || c === 61 || c === 10 || c === 45 || c === 33 || c === 40 || c === 91 || c === 123) n++;
    else if ((c === 36 || c === 37) && source.charCodeAt(i + 1) === 123) n++;
  }
  return n;
}

/** Longest run of `-`/`!` (spaces between allowed) let through to hcl2json. */
export const MAX_UNARY_RUN = 256;
/** Deepest `%{ if }`/`%{ for }` nesting let through to hcl2json. */
export const MAX_DIRECTIVE_NESTING = 100;

/**
 * Shapes that nest inside hcl2json without brackets (which the HCL scanner already bounds): long
 * unary chains and nested template directives. Thousands of them overflow the Go parser's stack
 * and kill its WASM runtime for the whole process, so they are refused before it sees them.
 * Counted over the raw text, strings included: the false positives need 256 dashes in a row.
 */
export function nestingHazard(source: string): string | null {
  let run = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c === 45 || c === 33) {
      if (++run > MAX_UNARY_RUN) return `more than ${MAX_UNARY_RUN} "-" or "!" in a row`;
    } else if (c !== 32 && c !== 9 && c !== 10 && c !== 13) run = 0;
  }
  let depth = 0;
  const directive = /%\{~?\s*(if|for|endif|endfor)\b/g;
  for (let m = directive.exec(source); m; m = directive.exec(source)) {
    depth += m[1] === 'if' || m[1] === 'for' ? 1 : -1;
    if (depth > MAX_DIRECTIVE_NESTING)
      return `template directives nested deeper than ${MAX_DIRECTIVE_NESTING}`;
  }
  return null;
}
