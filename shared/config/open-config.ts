/** The steps server.hcl and agent.hcl share: parse, outline, and the root body reader. */
import { HclSyntaxError, outlineHcl } from '../hcl/outline.js';
import { parseHcl } from '../hcl/parse.js';
import { type BodySchema, ConfigBodyReader, type ReadContext } from './config-body-reader.js';
import { ConfigError } from './config-error.js';
import type { Env } from './env.js';
import type { LogConfig, LogFormat, LogLevel } from './types.js';

/** Config files are small; anything bigger is a mistake (or an attack on the parser). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export async function openConfig(
  file: string,
  source: string,
  env: Env,
  schema: BodySchema,
): Promise<{ ctx: ReadContext; root: ConfigBodyReader }> {
  if (source.length > MAX_CONFIG_BYTES) {
    throw new ConfigError([{ file, line: 0, field: '', message: `larger than ${MAX_CONFIG_BYTES} bytes` }]);
  }
  let outline: ReturnType<typeof outlineHcl>;
  try {
    outline = outlineHcl(source);
  } catch (err) {
    if (!(err instanceof HclSyntaxError)) throw err;
    // hcl2json's message is the standard one when it has one; ours is the fallback.
    const parsed = await parseHcl(file, source);
    const e = parsed.ok ? { line: err.line, message: err.message } : parsed.error;
    throw new ConfigError([{ file, line: e.line, field: '', message: `syntax error: ${e.message}` }]);
  }
  const parsed = await parseHcl(file, source);
  if (!parsed.ok) {
    const e = parsed.error;
    throw new ConfigError([{ file, line: e.line, field: '', message: `syntax error: ${e.message}` }]);
  }
  const ctx: ReadContext = { file, env, errors: [] };
  const root = new ConfigBodyReader(ctx, '', 1, true, outline, parsed.json, schema);
  return { ctx, root };
}

/** Throws every recorded problem at once. */
export function throwIfErrors(ctx: ReadContext): void {
  if (ctx.errors.length > 0) throw new ConfigError(ctx.errors);
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const satisfies readonly LogLevel[];
export const LOG_FORMATS = ['json', 'pretty'] as const satisfies readonly LogFormat[];
export const LOG_SCHEMA: BodySchema = { attributes: ['level', 'format'], blocks: {} };

export function readLog(r: ConfigBodyReader): LogConfig {
  return {
    level: r.enumValue('level', LOG_LEVELS) ?? 'info',
    format: r.enumValue('format', LOG_FORMATS) ?? 'json',
  };
}
