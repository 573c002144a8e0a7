/**
 * `fluke agent --config agent.hcl`: the agent's wiring file. Loads the config, builds the logger
 * and the agent, and on SIGTERM/SIGINT stops accepting instructions, cancels running commands,
 * closes the socket and exits 0 — all within `shutdown_timeout`, or it kills what still runs and
 * exits 1; a second signal exits at once.
 */
import { readFileSync } from 'node:fs';
import { createAgent } from '../../agent/agent.js';
import { killAllCommandGroups } from '../../agent/run-command.js';
import { loadAgentConfig } from '../../shared/config/load.js';
import { coerceError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import { packageRoot } from '../../shared/paths.js';
import { runCommand, stdStreams } from '../cli/cli-context.js';
import { UsageError } from '../cli/cli-error.js';
import { readCommandLine, stringFlag, usageLines } from '../cli/command-line.js';
import { boundedShutdown, firstStopSignal } from '../shutdown.js';

const SPEC = {
  name: 'agent',
  synopsis: '--config FILE | release NAME',
  about: `Runs the host agent: connects to a gateway and runs what it is sent, until SIGTERM or
SIGINT (then it cancels running commands and exits 0, within shutdown_timeout; a second
signal exits at once). docs/agent.md describes the config.
\`fluke agent release NAME\` releases an enrolled agent name (see its --help).`,
  flags: [{ name: 'config', short: 'c', value: 'FILE', help: 'the agent config (agent.hcl); required' }],
};

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'release') return (await import('./agent-release.js')).run(argv.slice(1));
  return runCommand(stdStreams, 'agent', async () => {
    const line = readCommandLine(argv, SPEC, stdStreams.stdout);
    if (!line) return 0;
    const usage = usageLines(SPEC);
    if (line.positionals.length > 0)
      throw new UsageError(`unexpected argument ${line.positionals[0]}`, usage);
    const file = stringFlag(line, 'config');
    if (!file) throw new UsageError('--config is required', usage);
    return runAgent(file);
  });
}

async function runAgent(file: string): Promise<number> {
  let config: Awaited<ReturnType<typeof loadAgentConfig>>;
  try {
    config = await loadAgentConfig(file);
  } catch (err) {
    process.stderr.write(`fluke agent: ${coerceError(err).message}\n`);
    return 1;
  }
  const logger = createLogger(config.log, 'fluke-agent');
  const pkg = JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string };
  const agent = createAgent({ config, logger, version: pkg.version });

  const stopped = firstStopSignal();
  agent.start();
  const signal = await stopped;
  logger.info({ signal, shutdown_timeout_ms: config.shutdown_timeout_ms }, 'shutting down');
  const code = await boundedShutdown({
    logger,
    timeoutMs: config.shutdown_timeout_ms,
    graceful: (tracker) =>
      tracker.step('agent drain (cancel commands, last acks, close socket)', () => agent.stop(), logger),
    force: () => {
      const killed = killAllCommandGroups();
      if (killed > 0) logger.warn({ process_groups: killed }, 'killed the commands still running');
    },
  });
  logger.info('stopped');
  logger.flush();
  return code;
}
