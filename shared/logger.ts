import pino, { type Logger } from 'pino';
import type { LogConfig } from './config/types.js';

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

/** The one root logger of a process; everything else takes `logger.child({...})`. */
export function createLogger(config: LogConfig, name: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level: config.level,
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (config.format === 'pretty' && !destination) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, destination: 2 } },
    });
  }
  return pino(options, destination ?? pino.destination(1));
}
