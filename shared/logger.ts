import pino, { type Logger } from 'pino';
import type { LogConfig } from './config/types.js';
import { redactSecrets } from './redact.js';

export type { Logger };

/** Fields that must never reach a log line. */
const REDACT = [
  'token',
  'password',
  'authorization',
  '*.token',
  '*.password',
  '*.authorization',
  'headers.authorization',
  'config.agent_tokens',
  'config.api_tokens',
  '*.basic_auth_user',
  '*.basic_auth_password',
  'credential',
  '*.credential',
  '*.identity.key',
];

/** Errors and messages lose URL credentials (git's errors quote the URL): shared/redact.ts. */
function redactError(err: unknown): unknown {
  if (typeof err === 'string') return redactSecrets(err);
  const out = pino.stdSerializers.err(err as Error) as unknown;
  if (!out || typeof out !== 'object') return out;
  const o = out as { message?: unknown; stack?: unknown };
  return {
    ...o,
    ...(typeof o.message === 'string' ? { message: redactSecrets(o.message) } : {}),
    ...(typeof o.stack === 'string' ? { stack: redactSecrets(o.stack) } : {}),
  };
}

const SECRET_SAFE: Pick<pino.LoggerOptions, 'serializers' | 'hooks'> = {
  serializers: { err: redactError, error: redactError },
  hooks: {
    logMethod(args, method) {
      const safe = args.map((a: unknown) => (typeof a === 'string' ? redactSecrets(a) : a));
      method.apply(this, safe as Parameters<typeof method>);
    },
  },
};

/** The one root logger of a process; everything else takes `logger.child({...})`. */
export function createLogger(config: LogConfig, name: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level: config.level,
    redact: { paths: REDACT, censor: '[redacted]' },
    ...SECRET_SAFE,
  };
  if (config.format === 'pretty' && !destination) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, destination: 2 } },
    });
  }
  return pino(options, destination ?? pino.destination(1));
}
