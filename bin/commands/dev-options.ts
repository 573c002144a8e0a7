/** `fluke dev`'s flags (docs/cli.md) and the options they make. */
import { resolve } from 'node:path';
import { UsageError } from '../cli/cli-error.js';
import { type CommandLine, stringFlag, usageLines } from '../cli/command-line.js';

export const DEV_SPEC = {
  name: 'dev',
  synopsis: '[flags]',
  about: `The demo (npm start): a private Redis unless $REDIS_URL is set, examples/ as a local Git
repository, the all-in-one server and one local agent; prints the URLs and the events as they
happen. Ctrl-C stops everything it started.`,
  flags: [
    {
      name: 'data-dir',
      value: 'DIR',
      default: '.fluke-dev',
      help: 'Redis data, the demo repo, configs, tokens',
    },
    {
      name: 'http-port',
      value: 'PORT',
      default: '7071',
      help: 'the HTTP API and web UI; a free port if taken',
    },
    { name: 'agents-port', value: 'PORT', default: '7070', help: 'agent connections; a free port if taken' },
    { name: 'poll-interval', value: 'DURATION', default: '15s', help: 'how often the demo repo is polled' },
  ],
};

export interface DevOptions {
  dataDir: string;
  httpPort: number;
  agentsPort: number;
  pollInterval: string;
}

export function devOptions(line: CommandLine): DevOptions {
  const usage = usageLines(DEV_SPEC);
  if (line.positionals.length > 0) throw new UsageError(`unexpected argument ${line.positionals[0]}`, usage);
  const port = (name: string): number => {
    const value = Number(stringFlag(line, name));
    if (!Number.isInteger(value) || value < 0 || value > 65535)
      throw new UsageError(
        `--${name} must be a port number, not ${JSON.stringify(stringFlag(line, name))}`,
        usage,
      );
    return value;
  };
  return {
    dataDir: resolve(stringFlag(line, 'data-dir') as string),
    httpPort: port('http-port'),
    agentsPort: port('agents-port'),
    pollInterval: stringFlag(line, 'poll-interval') as string,
  };
}
