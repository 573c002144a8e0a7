/**
 * `local.<name>` across all manifest files. Locals are shared by every file of the repository,
 * as Terraform shares them across the files of a module; each is evaluated once, on first use,
 * with its own budget. A local that fails is reported once, where it is declared.
 */

import { errorMessage } from '../errors.js';
import type { Budget } from '../hcl/eval/budget.js';
import { evaluate } from '../hcl/eval/evaluate.js';
import { ExprError } from '../hcl/eval/expr-error.js';
import type { Value } from '../hcl/eval/value.js';
import type { AttrDecl } from './load-file.js';

/** Thrown where a failed local is used: the failure was reported where it was declared. */
export class AlreadyReported extends Error {}

class CycleError extends ExprError {
  constructor(readonly chain: string[]) {
    super(`locals refer to each other in a cycle: ${chain.join(' -> ')}`);
  }
}

export interface LocalDecl {
  file: string;
  attr: AttrDecl;
}

/** Local references may nest this deep before it is called a problem (keeps the stack safe). */
const MAX_LOCAL_CHAIN = 256;

export class LocalTable {
  private readonly values = new Map<string, Value>();
  private readonly failed = new Set<string>();
  private readonly resolving: string[] = [];

  constructor(
    private readonly decls: ReadonlyMap<string, LocalDecl>,
    /** A fresh budget per local, or null when the compile's total budget is spent. */
    private readonly newBudget: () => Budget,
    private readonly settle: (budget: Budget) => void,
    private readonly report: (decl: LocalDecl, message: string) => void,
  ) {}

  /** Every local's value (undefined: failed), for telling whether anything changed. */
  snapshot(): Map<string, Value | undefined> {
    const out = new Map<string, Value | undefined>();
    for (const name of this.decls.keys()) out.set(name, this.values.get(name));
    return out;
  }

  get(name: string): Value {
    const done = this.values.get(name);
    if (done !== undefined || this.values.has(name)) return done as Value;
    if (this.failed.has(name)) throw new AlreadyReported();
    const decl = this.decls.get(name);
    if (!decl) throw new ExprError(`unknown local "${name}"`);
    const at = this.resolving.indexOf(name);
    if (at >= 0) throw new CycleError([...this.resolving.slice(at), name]);
    if (this.resolving.length >= MAX_LOCAL_CHAIN) {
      throw new ExprError(`locals refer to each other more than ${MAX_LOCAL_CHAIN} deep`);
    }
    this.resolving.push(name);
    const budget = this.newBudget();
    try {
      if (!decl.attr.expr) throw new AlreadyReported();
      const value = evaluate(decl.attr.expr, { budget, local: (n) => this.get(n) });
      this.values.set(name, value);
      return value;
    } catch (err) {
      this.failed.add(name);
      // A cycle is reported once, at the local where it starts; the others just fail.
      if (err instanceof CycleError && err.chain[0] !== name) throw err;
      if (!(err instanceof AlreadyReported)) this.report(decl, `local.${name}: ${messageOf(err)}`);
      throw new AlreadyReported();
    } finally {
      this.resolving.pop();
      this.settle(budget);
    }
  }
}

export function messageOf(err: unknown): string {
  if (err instanceof RangeError) return 'expression too deeply nested to evaluate';
  return errorMessage(err);
}
