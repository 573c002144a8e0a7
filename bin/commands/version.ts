/** `fluke version [-o json]`: the version, the protocol agents and gateways must share, build info. */
import { readFileSync } from 'node:fs';
import { packageRoot } from '../../shared/paths.js';
import { PROTOCOL_VERSION } from '../../shared/protocol.js';
import { buildInfo } from '../cli/build-info.js';
import { type CliIo, printJson, processIo, runCommand } from '../cli/cli-context.js';
import { UsageError } from '../cli/cli-error.js';
import { readCommandLine, usageLines } from '../cli/command-line.js';
import { renderFields } from '../cli/render-table.js';

const SPEC = {
  name: 'version',
  synopsis: '[-o table|json]',
  about: 'The version, the agent ⇄ gateway protocol version and build info.',
  flags: [{ name: 'output', short: 'o', value: 'FMT', help: 'table (default) or json' }],
};
const USAGE = usageLines(SPEC);

export async function version(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, 'version', async () => {
    const args = readCommandLine(argv, SPEC, io.stdout);
    if (!args) return 0;
    if (args.positionals.length > 0)
      throw new UsageError(`unexpected argument ${args.positionals[0]}`, USAGE);
    const output = args.flags.output ?? 'table';
    if (output !== 'table' && output !== 'json') throw new UsageError('-o must be "table" or "json"', USAGE);
    const pkg = JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as {
      version: string;
      gitHead?: unknown;
    };
    const build = buildInfo(packageRoot, pkg);
    const info = {
      version: pkg.version,
      protocol: PROTOCOL_VERSION,
      commit: build.commit,
      built_at: build.built_at,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    };
    if (output === 'json') {
      printJson(io, info);
      return 0;
    }
    io.stdout(`fluke ${info.version}\n`);
    io.stdout(
      renderFields(
        [
          ['commit', info.commit ?? 'unknown'],
          ['built', info.built_at ?? 'not built (running from source)'],
          ['protocol', `v${info.protocol}`],
          ['node', info.node],
          ['platform', info.platform],
        ],
        '  ',
      ),
    );
    return 0;
  });
}

export function run(argv: string[]): Promise<number> {
  return version(argv, processIo());
}
