import { ExprError } from './expr-error.js';

/**
 * What one evaluation may spend: steps (one per node visited, and one per element a function
 * builds) and the length of any string it makes. Hostile manifests hit these, never a hang.
 */
export class Budget {
  used = 0;
  constructor(
    readonly maxSteps: number,
    readonly maxStringLength: number,
    /** Said when the steps run out, if not the default. */
    readonly exhausted?: string,
  ) {}

  charge(steps: number): void {
    this.used += steps;
    if (this.used > this.maxSteps) {
      throw new ExprError(
        this.exhausted ?? `expression too expensive: more than ${this.maxSteps} evaluation steps`,
      );
    }
  }

  /** Call before building a string of `length` characters. */
  checkLength(length: number): void {
    if (length > this.maxStringLength) {
      throw new ExprError(`string too long: ${length} characters, the limit is ${this.maxStringLength}`);
    }
    this.charge(Math.ceil(length / 1024));
  }
}
