/**
 * Loading server.hcl and agent.hcl from disk. The parsing itself is pure and lives in
 * serverConfig.ts / agentConfig.ts; this adds only the file read.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errorMessage } from '../errors.js';
import { parseAgentConfig } from './agent-config.js';
import { ConfigError } from './config-error.js';
import type { Env } from './env.js';
import { parseServerConfig } from './server-config.js';
import type { AgentConfig, ServerConfig } from './types.js';

export { AGENT_NAME, parseAgentConfig } from './agent-config.js';
export { ConfigError, type ConfigIssue, formatConfigIssue } from './config-error.js';
export { type Env, substituteEnv } from './env.js';
export { parseListenAddress } from './listen-address.js';
export { REDACTED, redactConfig } from './redact-config.js';
export { EVENT_STORE_BACKENDS, parseServerConfig, requiresAlertWebhook } from './server-config.js';

async function readSource(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? 'no such file' : `cannot read: ${errorMessage(err)}`;
    throw new ConfigError([{ file, line: 0, field: '', message }]);
  }
}

/** Reads and validates server.hcl; throws ConfigError listing every problem. */
export async function loadServerConfig(path: string, env: Env = process.env): Promise<ServerConfig> {
  const file = resolve(path);
  return parseServerConfig(file, await readSource(file), env);
}

/** Reads and validates agent.hcl; `agent.name` defaults to the host name. */
export async function loadAgentConfig(path: string, env: Env = process.env): Promise<AgentConfig> {
  const file = resolve(path);
  return parseAgentConfig(file, await readSource(file), env);
}
