/**
 * `fluke describe agent NAME` and `fluke describe task NAME`: one object in detail, as
 * `Key: value` fields followed by its tables (tasks and events; steps and agents).
 */
import type { AgentDetail, TaskDetail, TaskStatus } from '../cli/api-types.js';
import {
  apiCommand,
  type CliIo,
  type CommandContext,
  commandContext,
  printJson,
  processIo,
  runCommand,
} from '../cli/cli-context.js';
import { UsageError } from '../cli/cli-error.js';
import { usageLines } from '../cli/command-line.js';
import {
  ago,
  countsText,
  driftText,
  eventColumns,
  eventRow,
  labelsText,
  selectorText,
} from '../cli/format.js';
import { type Cell, renderFields, renderTable } from '../cli/render-table.js';

const SPEC = apiCommand({
  name: 'describe',
  synopsis: 'agent NAME | task NAME [flags]',
  about: `  agent NAME          labels, connection, matched tasks with their last result, recent events
  task NAME           definition (selector, steps in order with every field), matched agents
                      and each one's status`,
  flags: [],
});
const USAGE = usageLines(SPEC);

export async function describe(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, 'describe', async () => {
    const ctx = commandContext(argv, SPEC, io);
    if (!ctx) return 0;
    const [kind, name, extra] = ctx.args.positionals;
    if (kind === undefined) throw new UsageError('missing what to describe: agent NAME or task NAME', USAGE);
    if (kind !== 'agent' && kind !== 'task')
      throw new UsageError(`cannot describe ${JSON.stringify(kind)}: agent NAME or task NAME`, USAGE);
    if (name === undefined || name === '') throw new UsageError(`describe ${kind} needs a NAME`, USAGE);
    if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}`, USAGE);
    return kind === 'agent' ? describeAgent(ctx, io, name) : describeTask(ctx, io, name);
  });
}

function statusCells(s: TaskStatus | null, now: number): Cell[] {
  if (!s) return ['unknown', null, null, null, null];
  const steps = [...s.drifted_steps, ...s.failed_steps.filter((x) => !s.drifted_steps.includes(x))];
  return [s.outcome, s.mode, ago(s.at, now), s.execution_id, steps.join(',')];
}

async function describeAgent(ctx: CommandContext, io: CliIo, name: string): Promise<number> {
  const { agent } = await ctx.client.get<{ agent: AgentDetail }>(
    `/api/v1/agents/${encodeURIComponent(name)}`,
  );
  if (ctx.output === 'json') return printJson(io, agent);
  const now = io.now();
  const connected = agent.connected
    ? `yes, since ${agent.connected_at ?? '?'} (${ago(agent.connected_at, now)}) via gateway ${agent.gateway_id ?? '?'}`
    : 'no';
  io.stdout(
    renderFields([
      ['Name', agent.name],
      // A disconnected agent shows the labels it last declared, if the server remembers any.
      ['Labels', labelsText(agent.labels) || (agent.connected ? '(none)' : '(none remembered)')],
      ['Connected', connected],
      ['Last seen', agent.last_seen ? `${agent.last_seen} (${ago(agent.last_seen, now)})` : null],
      ['Version', agent.agent_version],
      ['Executors', agent.executors.join(', ')],
      ['Drift', driftText(agent.drift)],
    ]),
  );
  const width = io.columns;
  io.stdout(`\nTasks:\n`);
  io.stdout(
    agent.tasks.length === 0
      ? '  (none)\n'
      : renderTable(
          ['task', 'outcome', 'mode', 'age', 'execution', 'steps'],
          agent.tasks.map((t) => [t.task, ...statusCells(t.status, now)]),
          { indent: '  ', width },
        ),
  );
  io.stdout(`\nEvents (newest first):\n`);
  io.stdout(
    agent.events.length === 0
      ? '  (none)\n'
      : renderTable(
          eventColumns(false),
          agent.events.map((e) => eventRow(e, now, false)),
          { indent: '  ', width },
        ),
  );
  return 0;
}

/** A step field's value as text: maps as `k=v` lines, null as "-". */
function fieldText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map((v) => fieldText(v) ?? '-').join(', ');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return null;
  return entries.map(([k, v]) => `${k}=${fieldText(v) ?? '-'}`).join('\n');
}

async function describeTask(ctx: CommandContext, io: CliIo, name: string): Promise<number> {
  const { task } = await ctx.client.get<{ task: TaskDetail }>(`/api/v1/tasks/${encodeURIComponent(name)}`);
  if (ctx.output === 'json') return printJson(io, task);
  const now = io.now();
  io.stdout(
    renderFields([
      ['Name', task.name],
      ['Description', task.description],
      ['Policy', task.drift ? task.policy : `${task.policy} (server default)`],
      ['Selector', selectorText(task.selector)],
      ['Matched agents', task.matched_agents],
      ['Status', countsText(task.status_counts) || null],
    ]),
  );
  io.stdout(`\nSteps (in order):\n`);
  task.steps.forEach((step, i) => {
    io.stdout(`  ${i + 1}. ${step.type} "${step.name}"\n`);
    const fields = Object.entries(step)
      .filter(([k]) => k !== 'type' && k !== 'name')
      .map(([k, v]): [string, Cell] => [k, fieldText(v)]);
    if (fields.length > 0) io.stdout(renderFields(fields, '       '));
  });
  io.stdout(`\nAgents:\n`);
  io.stdout(
    task.agents.length === 0
      ? '  (none connected match the selector)\n'
      : renderTable(
          ['agent', 'connected', 'outcome', 'mode', 'age', 'execution', 'steps'],
          task.agents.map((a) => [a.name, a.connected ? 'yes' : 'no', ...statusCells(a.status, now)]),
          { indent: '  ', width: io.columns },
        ),
  );
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return describe(argv, processIo());
}
