/**
 * `fluke agent release NAME`: removes the name's enrollment record (DELETE
 * /api/v1/agents/{name}/enrollment), so a re-imaged host can enroll the name again with its
 * bootstrap token. Needs FLUKE_API_TOKEN.
 */
import {
  apiCommand,
  type CliIo,
  commandContext,
  printJson,
  processIo,
  runCommand,
} from '../cli/cli-context.js';
import { UsageError } from '../cli/cli-error.js';
import { usageLines } from '../cli/command-line.js';

const SPEC = apiCommand({
  name: 'agent release',
  synopsis: 'NAME [flags]',
  about: `Releases an agent name: removes its enrollment record, so another identity (a re-imaged
host with the bootstrap token) may enroll it. A session holding the name now is not disconnected.
Needs FLUKE_API_TOKEN.`,
  flags: [],
});
const USAGE = usageLines(SPEC);

interface Released {
  name: string;
  released: boolean;
  identity: string | null;
  grant: string | null;
}

export async function release(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, 'agent release', async () => {
    const ctx = commandContext(argv, SPEC, io);
    if (!ctx) return 0;
    const [name, extra] = ctx.args.positionals;
    if (name === undefined || name === '') throw new UsageError('agent release needs a NAME', USAGE);
    if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}`, USAGE);
    const result = await ctx.client.delete<Released>(`/api/v1/agents/${encodeURIComponent(name)}/enrollment`);
    if (ctx.output === 'json') return printJson(io, result);
    io.stdout(
      result.released
        ? `released ${name} (was held by ${result.identity}, grant ${result.grant})\n`
        : `${name} was not enrolled; nothing to release\n`,
    );
    return 0;
  });
}

export function run(argv: string[]): Promise<number> {
  return release(argv, processIo());
}
