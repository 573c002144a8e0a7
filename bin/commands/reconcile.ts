/**
 * `fluke reconcile all | agent NAME | task NAME`: triggers a manual reconcile (which always
 * applies), then follows its progress, printing one line per (agent, task) as results arrive and
 * a summary. Exits non-zero if anything failed or timed out (docs/cli.md).
 */
import { parseDuration } from '../../shared/duration.js';
import { errorMessage } from '../../shared/errors.js';
import type { ReconcileAccepted, RunProgress } from '../cli/api-types.js';
import {
  apiCommand,
  type CliIo,
  commandContext,
  printJson,
  processIo,
  runCommand,
} from '../cli/cli-context.js';
import { CliError, EXIT, UsageError } from '../cli/cli-error.js';
import { stringFlag, usageLines } from '../cli/command-line.js';
import { RunFollower, reconcileTarget, runExitCode, summaryLine } from '../cli/run-follower.js';

const SPEC = apiCommand({
  name: 'reconcile',
  synopsis: 'all | agent NAME | task NAME [flags]',
  about: `Triggers a manual reconcile (it always applies, alert_only tasks included; needs
FLUKE_API_TOKEN), then follows it: one line per (agent, task) result, then a summary.`,
  flags: [
    { name: 'no-follow', help: 'print the run id and return at once' },
    {
      name: 'timeout',
      value: 'DURATION',
      default: '10m',
      help: 'stop following after this long; then exit 1',
    },
  ],
});
const USAGE = usageLines(SPEC);

/** How often progress is polled: results show up within half a second of being judged. */
export const POLL_MS = 400;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function reconcile(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, 'reconcile', async () => {
    const ctx = commandContext(argv, SPEC, io);
    if (!ctx) return 0;
    const target = reconcileTarget(ctx.args.positionals);
    if (typeof target === 'string') throw new UsageError(target, USAGE);
    const timeoutFlag = stringFlag(ctx.args, 'timeout') ?? '10m';
    let timeoutMs: number;
    try {
      timeoutMs = parseDuration(timeoutFlag);
    } catch (err) {
      throw new UsageError(`--timeout: ${errorMessage(err)}`, USAGE);
    }
    if (timeoutMs <= 0) throw new UsageError('--timeout must be more than 0', USAGE);

    const accepted = await ctx.client.post<ReconcileAccepted>('/api/v1/reconcile', target);
    const json = ctx.output === 'json';
    if (ctx.args.flags['no-follow']) {
      if (json) return printJson(io, accepted);
      io.stdout(`${accepted.id}\n`);
      return 0;
    }
    const what = target.name ? `${target.target} ${target.name}` : 'all';
    if (!json) io.stdout(`reconcile ${what}: run ${accepted.id}\n`);

    const path = `/api/v1/reconcile/${encodeURIComponent(accepted.id)}`;
    const follower = new RunFollower();
    const deadline = io.now() + timeoutMs;
    let progress: RunProgress | null = null;
    let lostServer = false;
    for (;;) {
      try {
        progress = await ctx.client.get<RunProgress>(path);
        if (lostServer) io.stderr('fluke reconcile: the server answers again\n');
        lostServer = false;
      } catch (err) {
        // A gateway restart mid-run must not lose the run: it lives in Redis, keep asking.
        if (!(err instanceof CliError) || err.exitCode !== EXIT.UNREACHABLE || io.now() > deadline) throw err;
        if (!lostServer) io.stderr(`fluke reconcile: ${err.message}; retrying\n`);
        lostServer = true;
      }
      if (progress && !json) for (const line of follower.next(progress)) io.stdout(`${line}\n`);
      if (progress?.done || io.now() > deadline) break;
      await sleep(POLL_MS);
    }
    if (!progress) throw new CliError(`no progress for run ${accepted.id}`);
    if (json) printJson(io, progress);
    else io.stdout(`${summaryLine(progress)}\n`);
    if (!progress.done)
      io.stderr(
        `fluke reconcile: gave up waiting after ${timeoutFlag}; the run goes on — see ${ctx.server}${path}\n`,
      );
    return runExitCode(progress);
  });
}

export function run(argv: string[]): Promise<number> {
  return reconcile(argv, processIo());
}
