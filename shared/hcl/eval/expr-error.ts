/** A parse or evaluation error; `offset` is within the expression text when known. */
export class ExprError extends Error {
  constructor(
    message: string,
    readonly offset = 0,
  ) {
    super(message);
    this.name = 'ExprError';
  }
}
