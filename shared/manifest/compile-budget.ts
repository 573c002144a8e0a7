/**
 * The evaluation budget of one compile. Each expression gets a Budget of its own (maxEvalSteps),
 * and every step any of them takes counts toward maxTotalEvalSteps, so a repository of many
 * moderately expensive expressions is stopped as surely as one runaway expression. Once the total
 * is spent, one error says so and nothing more is evaluated.
 */
import { Budget } from '../hcl/eval/budget.js';
import type { CompileDiagnostic } from './compile.js';
import type { CompileLimits } from './limits.js';
import { diag } from './top-level-checks.js';

export class CompileBudget {
  private totalSteps = 0;
  /** Whether the total ran out: what was evaluated after that is incomplete. */
  exhausted = false;
  private readonly totalMessage: string;

  constructor(
    private readonly limits: CompileLimits,
    private readonly errors: CompileDiagnostic[],
  ) {
    this.totalMessage = `evaluation stopped: more than ${limits.maxTotalEvalSteps} steps in this compile`;
  }

  /** A budget for one expression: the per-expression limit, or what is left of the total if less. */
  readonly newBudget = (): Budget => {
    const left = Math.max(0, this.limits.maxTotalEvalSteps - this.totalSteps);
    if (left >= this.limits.maxEvalSteps)
      return new Budget(this.limits.maxEvalSteps, this.limits.maxStringLength);
    return new Budget(left, this.limits.maxStringLength, this.totalMessage);
  };

  /** Counts what a finished expression used toward the total. */
  readonly settle = (b: Budget): void => {
    this.totalSteps += Math.min(b.used, b.maxSteps);
  };

  /** True once the total is spent; the first call that finds it so reports it at file:line. */
  spent(file: string, line: number): boolean {
    if (this.totalSteps < this.limits.maxTotalEvalSteps) return false;
    if (!this.exhausted) this.errors.push(diag(file, line, undefined, this.totalMessage));
    this.exhausted = true;
    return true;
  }
}
