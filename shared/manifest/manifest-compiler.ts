/**
 * Manifest files to the desired state. Parsing (hcl2json plus Fluke's expression parser) is the
 * expensive part and depends only on a file's content, so it is cached by content hash: a repo
 * where one file changed re-parses that one file. Evaluation and checking are cheap and run
 * over everything each time, since locals are shared across files.
 */
import { evaluate } from '../hcl/eval/evaluate.js';
import { type Value, valuesEqual } from '../hcl/eval/value.js';
import { type ParserPool, sharedParserPool } from '../hcl/parser-pool.js';
import type { CompiledTask, SourceLocation } from '../types.js';
import { buildTask } from './build-task.js';
import type { CompileDiagnostic, CompileResult, ManifestFile } from './compile.js';
import { CompileBudget } from './compile-budget.js';
import { type CompileLimits, resolveLimits } from './limits.js';
import type { AttrDecl, BlockDecl, FileUnit } from './load-file.js';
import { loadUnits } from './load-units.js';
import { AlreadyReported, LocalTable, messageOf } from './local-table.js';
import type { BuildEnv } from './manifest-block-reader.js';
import { at, byPosition, checkTaskHeader, collectLocals, diag } from './top-level-checks.js';

type Note = { line: number; column: number | undefined; message: string };

/** The tasks found so far in one compile, with where each task and step is declared. */
interface FoundTasks {
  tasks: Map<string, { task: CompiledTask; loc: SourceLocation }>;
  sources: [string, SourceLocation][];
  /** Task blocks seen, valid or not, counted against maxTasks. */
  count: number;
}

interface BuiltTask {
  task: CompiledTask;
  errors: Note[];
  warnings: Note[];
}

function sameLocals(a: Map<string, Value | undefined>, b: Map<string, Value | undefined>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    if (!b.has(k)) return false;
    const w = b.get(k);
    if (v === undefined || w === undefined ? v !== w : !valuesEqual(v, w)) return false;
  }
  return true;
}

export interface ManifestCompilerOptions {
  /** A ParserPool of your own, or 'in-thread' for no workers (default: the shared pool). */
  parser?: ParserPool | 'in-thread';
}

export class ManifestCompiler {
  readonly limits: CompileLimits;
  private cache = new Map<string, FileUnit>();
  /** How many files were parsed (cache misses) over this compiler's life. */
  parseCount = 0;
  /**
   * Built tasks by their (cached, content-addressed) block. Valid while every local keeps its
   * value: locals are the only way one file affects another's tasks.
   */
  private built = new WeakMap<BlockDecl, BuiltTask>();
  private lastLocals: Map<string, Value | undefined> | null = null;

  /** Where hcl2json runs: the process's shared worker pool unless `options.parser` says otherwise. */
  private readonly parser: ParserPool | 'in-thread' | undefined;

  constructor(limits?: Partial<CompileLimits>, options: ManifestCompilerOptions = {}) {
    this.limits = resolveLimits(limits);
    this.parser = options.parser;
  }

  /** Never throws: whatever goes wrong ends up in `errors`. */
  async compile(files: ManifestFile[]): Promise<CompileResult> {
    try {
      return await this.compileAll(files);
    } catch (err) {
      const message = `internal error while compiling (please report it): ${messageOf(err)}`;
      return {
        state: { tasks: [] },
        sources: {},
        errors: [diag(files[0]?.path ?? '.', 1, undefined, message)],
        warnings: [],
      };
    }
  }

  private async compileAll(files: ManifestFile[]): Promise<CompileResult> {
    const errors: CompileDiagnostic[] = [];
    const warnings: CompileDiagnostic[] = [];
    const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const units = await this.load(sorted, errors);
    const budget = new CompileBudget(this.limits, errors);
    const locals = this.evaluateLocals(units, budget, errors);
    const ctx = { budget: budget.newBudget(), local: (n: string) => locals.get(n) };

    const found: FoundTasks = { tasks: new Map(), sources: [], count: 0 };
    for (const { path, unit } of units) {
      const env: BuildEnv = {
        error: (line, column, message) => errors.push(diag(path, line, column, message)),
        warning: (line, column, message) => warnings.push(diag(path, line, column, message)),
        evaluate: (attr: AttrDecl): Value | undefined => {
          if (attr.expr?.kind === 'literal') return attr.expr.value;
          if (!attr.expr || budget.spent(path, attr.line)) return undefined;
          const b = budget.newBudget();
          ctx.budget = b;
          try {
            return evaluate(attr.expr, ctx);
          } catch (err) {
            if (!(err instanceof AlreadyReported)) {
              errors.push(diag(path, attr.line, attr.column, `${attr.name}: ${messageOf(err)}`));
            }
            return undefined;
          } finally {
            budget.settle(b);
          }
        },
      };
      for (const attr of unit.attrs) {
        env.error(
          attr.line,
          attr.column,
          `unexpected attribute "${attr.name}" at the top level; only locals and task blocks belong here`,
        );
      }
      this.addTasks(unit, path, env, found, { errors, warnings, exhausted: () => budget.exhausted });
    }
    const names = [...found.tasks.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      state: { tasks: names.map((n) => (found.tasks.get(n) as { task: CompiledTask }).task) },
      sources: Object.fromEntries(found.sources),
      errors: errors.sort(byPosition),
      warnings: warnings.sort(byPosition),
    };
  }

  /**
   * Every local evaluated up front, so each failure is reported where it is declared. Tasks
   * built in an earlier compile stay valid only while every local keeps its value.
   */
  private evaluateLocals(
    units: { path: string; unit: FileUnit }[],
    budget: CompileBudget,
    errors: CompileDiagnostic[],
  ): LocalTable {
    const localDecls = collectLocals(units, errors);
    const locals = new LocalTable(localDecls, budget.newBudget, budget.settle, (d, m) =>
      errors.push(diag(d.file, d.attr.line, d.attr.column, m)),
    );
    for (const [name, decl] of localDecls) {
      if (budget.spent(decl.file, decl.attr.line)) break;
      try {
        locals.get(name);
      } catch (err) {
        if (!(err instanceof AlreadyReported))
          errors.push(diag(decl.file, decl.attr.line, decl.attr.column, messageOf(err)));
      }
    }
    const snapshot = locals.snapshot();
    if (!this.lastLocals || !sameLocals(this.lastLocals, snapshot)) this.built = new WeakMap();
    this.lastLocals = snapshot;
    return locals;
  }

  /** The task blocks of one file into `found`: checked, counted against maxTasks, unique by name. */
  private addTasks(
    unit: FileUnit,
    path: string,
    env: BuildEnv,
    found: FoundTasks,
    out: { errors: CompileDiagnostic[]; warnings: CompileDiagnostic[]; exhausted: () => boolean },
  ): void {
    for (const block of unit.blocks) {
      if (block.type === 'locals') continue;
      if (block.type !== 'task') {
        env.error(block.line, block.column, `unknown block "${block.type}"; expected locals or task`);
        continue;
      }
      if (!checkTaskHeader(block, path, out.errors)) continue;
      if (++found.count > this.limits.maxTasks) {
        if (found.count === this.limits.maxTasks + 1)
          env.error(block.line, block.column, `more than ${this.limits.maxTasks} tasks`);
        continue;
      }
      const name = block.labels[0] as string;
      const loc: SourceLocation = { file: path, line: block.line, column: block.column };
      const task = this.buildCached(block, env, path, out.errors, out.warnings, out.exhausted);
      const first = found.tasks.get(name);
      if (first) {
        env.error(
          block.line,
          block.column,
          `task "${name}" is declared twice: at ${at(first.loc.file, first.loc.line)} and ${at(path, block.line)}`,
        );
        continue;
      }
      found.tasks.set(name, { task, loc });
      found.sources.push([name, loc]);
      for (const step of task.steps) {
        const b = block.blocks.find((x) => x.type === step.type && x.labels[0] === step.name);
        found.sources.push([
          `${name}/${step.name}`,
          { file: path, line: b?.line ?? block.line, column: b?.column ?? 1 },
        ]);
      }
    }
  }

  /** buildTask, or its result from the last compile when neither the block nor any local changed. */
  private buildCached(
    block: BlockDecl,
    env: BuildEnv,
    path: string,
    errors: CompileDiagnostic[],
    warnings: CompileDiagnostic[],
    exhausted: () => boolean,
  ): CompiledTask {
    let built = this.built.get(block);
    if (!built) {
      const b: BuiltTask = { task: undefined as unknown as CompiledTask, errors: [], warnings: [] };
      b.task = buildTask(
        block,
        {
          evaluate: env.evaluate,
          error: (line, column, message) => b.errors.push({ line, column, message }),
          warning: (line, column, message) => b.warnings.push({ line, column, message }),
        },
        this.limits.maxStepsPerTask,
      );
      built = b;
      // A task built after the total budget ran out is incomplete: build it again next time.
      if (!exhausted()) this.built.set(block, built);
    }
    for (const n of built.errors) errors.push(diag(path, n.line, n.column, n.message));
    for (const n of built.warnings) warnings.push(diag(path, n.line, n.column, n.message));
    return built.task;
  }

  /** Units for every file, from the cache where the content is unchanged. */
  private async load(
    files: ManifestFile[],
    errors: CompileDiagnostic[],
  ): Promise<{ path: string; unit: FileUnit }[]> {
    const pool = this.parser === 'in-thread' ? null : (this.parser ?? sharedParserPool());
    const hcl2json = pool ? (file: string, text: string) => pool.parse(file, text) : undefined;
    const loaded = await loadUnits(files, this.cache, this.limits, hcl2json, errors);
    this.parseCount += loaded.parsed;
    this.cache = loaded.cache;
    return loaded.units;
  }
}
