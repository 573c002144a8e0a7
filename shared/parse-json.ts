/**
 * JSON read back from Redis or the wire, checked against a zod schema. Stored values can be
 * missing, truncated or written by another version, so readers want "the value, or nothing"
 * rather than an exception.
 */
import type { z } from 'zod';

/** The parsed value when `text` is a string holding JSON that `schema` accepts, else null. */
export function parseJsonWith<S extends z.ZodType>(schema: S, text: unknown): z.output<S> | null {
  if (typeof text !== 'string') return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}
