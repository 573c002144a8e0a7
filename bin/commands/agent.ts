/**
 * `fluke agent --config agent.hcl`: the agent's wiring file. Loads the config, builds the logger
 * and the agent, and on SIGTERM/SIGINT stops accepting instructions, cancels running commands,
 * closes the socket and exits 0.
 */
import { readFileSync } from 'node:fs';
import { createAgent } from '../../agent/agent.js';
import { loadAgentConfig } from '../../shared/config/load.js';
import { createLogger } from '../../shared/logger.js';
import { packageRoot } from '../../shared/paths.js';
import { coerceError } from '../../shared/types.js';

const USAGE = 'usage: fluke agent --config agent.hcl\n';

export function parseArgs(argv: string[]): { config: string } | { error: string } | { help: true } {
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { help: true };
    if (arg === '--config' || arg === '-c') {
      config = argv[++i];
      if (config === undefined) return { error: `${arg} needs a file` };
    } else if (arg.startsWith('--config=')) {
      config = arg.slice('--config='.length);
    } else {
      return { error: `unknown argument "${arg}"` };
    }
  }
  return config ? { config } : { error: '--config is required' };
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if ('help' in args) {
    process.stdout.write(USAGE);
    return 0;
  }
  if ('error' in args) {
    process.stderr.write(`fluke agent: ${args.error}\n${USAGE}`);
    return 2;
  }
  let config: Awaited<ReturnType<typeof loadAgentConfig>>;
  try {
    config = await loadAgentConfig(args.config);
  } catch (err) {
    process.stderr.write(`fluke agent: ${coerceError(err).message}\n`);
    return 1;
  }
  const logger = createLogger(config.log, 'fluke-agent');
  const pkg = JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string };
  const agent = createAgent({ config, logger, version: pkg.version });

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  agent.start();
  const signal = await stopped;
  logger.info({ signal }, 'shutting down');
  await agent.stop();
  logger.info('stopped');
  logger.flush();
  return 0;
}
