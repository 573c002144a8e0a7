/**
 * Anything thrown, as an Error or as the message to log or report. Catch sites get `unknown`:
 * libraries and Redis scripts throw strings and plain objects too, and a log line must never
 * read `[object Object]` or throw while describing the failure.
 */

/** Turn anything thrown into an Error (an Error is returned as it is). */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(describeThrown(err));
}

/** The message of anything thrown: an Error's own message, a string as it is, else its JSON. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : describeThrown(err);
}

function describeThrown(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    // undefined, functions and symbols have no JSON; BigInts and cycles make stringify throw.
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {}
  return String(value);
}
