/**
 * `fluke server|gateway|reconciler`: the flags of the three service roles. The command line is
 * checked here, then handed to runRole (bin/services.ts) in the one spelling its own parser
 * reads the same way (`--name=value`).
 */
import { runCommand, stdStreams } from '../cli/cli-context.js';
import { UsageError } from '../cli/cli-error.js';
import { type CommandSpec, type Flag, readCommandLine, usageLines } from '../cli/command-line.js';
import { type Role, runRole } from '../services.js';

const ABOUT: Record<Role, string> = {
  server: 'All in one process: the gateway (agent connections, HTTP API, web UI) and the reconciler workers.',
  gateway:
    'Agent connections on listen_agents; the HTTP API, web UI, Bull Board and /metrics on listen_http.',
  reconciler: 'The BullMQ workers: poll Git, compile, dispatch, judge results, send alerts.',
};

const CONFIG: Flag = {
  name: 'config',
  short: 'c',
  value: 'FILE',
  default: 'server.hcl',
  help: 'the server config',
};

function dataDir(role: Role): Flag {
  return {
    name: 'data-dir',
    value: 'DIR',
    help:
      role === 'gateway'
        ? 'accepted for symmetry with server and reconciler; a gateway keeps no Git cache'
        : "where this process's Git cache lives (default ./.fluke-data)",
  };
}

export function roleSpec(role: Role): CommandSpec {
  const flags = [CONFIG, dataDir(role)];
  if (role === 'reconciler')
    flags.push({ name: 'exit-when-idle', help: 'exit 0 once no queue has a job waiting or running' });
  return {
    name: role,
    synopsis: '[--config FILE] [flags]',
    about: `${ABOUT[role]}\nRuns until SIGTERM or SIGINT, then drains and exits 0; exit 1 if it cannot start.`,
    flags,
  };
}

export function runRoleCommand(role: Role, argv: readonly string[]): Promise<number> {
  const spec = roleSpec(role);
  return runCommand(stdStreams, role, async () => {
    const line = readCommandLine(argv, spec, stdStreams.stdout);
    if (!line) return 0;
    if (line.positionals.length > 0)
      throw new UsageError(`unexpected argument ${line.positionals[0]}`, usageLines(spec));
    const args = Object.entries(line.flags).map(([name, value]) =>
      value === true ? `--${name}` : `--${name}=${value}`,
    );
    return runRole(role, args);
  });
}
