/**
 * `fluke logs EXECUTION_ID [-f]`: the output of one execution. Without -f it prints what the
 * server has buffered; with -f it streams the server-sent events until the execution ends and
 * exits 0 only if it came out satisfied or applied.
 */
import type { ExecutionView, OutputRecord } from '../cli/api-types.js';
import {
  apiCommand,
  type CliIo,
  type CommandContext,
  commandContext,
  positionals,
  printJson,
  processIo,
  runCommand,
} from '../cli/cli-context.js';
import { CliError, EXIT } from '../cli/cli-error.js';
import { usageLines } from '../cli/command-line.js';
import { isSuccess, outputLine } from '../cli/format.js';
import { sseEvents } from '../cli/sse-events.js';

const SPEC = apiCommand({
  name: 'logs',
  synopsis: 'EXECUTION_ID [-f] [flags]',
  about: `Prints an execution's output as [step/phase] lines (execution ids are in
"fluke reconcile", "fluke get events" and "fluke describe").`,
  flags: [
    {
      name: 'follow',
      short: 'f',
      help: 'stream live output until the execution ends; exit 0 only if it\ncame out satisfied or applied',
    },
  ],
});
const USAGE = usageLines(SPEC);

export async function logs(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, 'logs', async () => {
    const ctx = commandContext(argv, SPEC, io);
    if (!ctx) return 0;
    const [id] = positionals(ctx, ['EXECUTION_ID'], USAGE) as [string];
    return ctx.args.flags.follow ? follow(ctx, io, id) : show(ctx, io, id);
  });
}

async function show(ctx: CommandContext, io: CliIo, id: string): Promise<number> {
  const view = await ctx.client.get<ExecutionView>(`/api/v1/executions/${encodeURIComponent(id)}`);
  if (ctx.output === 'json') return printJson(io, view);
  const { execution, output } = view;
  for (const r of output) io.stdout(`${outputLine(r)}\n`);
  const event = execution.event;
  if (output.length === 0 && event?.kind === 'task_run' && event.steps.some((s) => s.output_tail)) {
    // Nothing buffered (expired, or the commands were silent): the event keeps each step's tail.
    io.stderr('(no live output buffered; showing the output tails kept in the event)\n');
    for (const s of event.steps)
      for (const line of s.output_tail.replace(/\n$/, '').split('\n'))
        if (line) io.stdout(`${outputLine({ step: s.step, phase: 'tail', stream: 'stdout', line })}\n`);
  }
  const where = `${execution.agent}/${execution.task}`;
  io.stderr(
    execution.done
      ? `execution ${execution.id} (${where}): ${execution.outcome ?? 'unknown'}\n`
      : `execution ${execution.id} (${where}) is still running; follow it with: fluke logs -f ${execution.id}\n`,
  );
  return 0;
}

async function follow(ctx: CommandContext, io: CliIo, id: string): Promise<number> {
  const json = ctx.output === 'json';
  const stream = await ctx.client.stream(`/api/v1/executions/${encodeURIComponent(id)}/stream`);
  let end: { execution_id?: string; outcome?: string | null } | null = null;
  try {
    for await (const ev of sseEvents(stream.chunks)) {
      if (ev.event === 'output') {
        if (json) io.stdout(`${ev.data}\n`);
        else io.stdout(`${parseRecord(ev.data)}\n`);
      } else if (ev.event === 'end') {
        end = parseJson(ev.data) ?? {};
        break;
      }
    }
  } finally {
    stream.close();
  }
  if (!end)
    throw new CliError(
      `the server closed the stream of execution ${id} before it ended; run "fluke logs ${id}" to see where it stands`,
      EXIT.UNREACHABLE,
    );
  const outcome = end.outcome ?? null;
  if (json) io.stdout(`${JSON.stringify({ execution_id: end.execution_id ?? id, outcome })}\n`);
  else io.stderr(`execution ${end.execution_id ?? id}: ${outcome ?? 'ended without an outcome'}\n`);
  return isSuccess(outcome) ? EXIT.OK : EXIT.FAILURE;
}

function parseJson<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

/** An output event as a line; data that is not a record is shown as it came. */
function parseRecord(data: string): string {
  const r = parseJson<OutputRecord>(data);
  return r && typeof r.line === 'string' ? outputLine(r) : data;
}

export function run(argv: string[]): Promise<number> {
  return logs(argv, processIo());
}
