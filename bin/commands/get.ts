/**
 * `fluke get agents|tasks|drift|events`: listings from the HTTP API as aligned tables or JSON.
 * Paged lists are followed to the end, so a table is never silently the first page only.
 */
import type { AgentView, DriftEntry, FlukeEvent, TaskSummaryView } from '../cli/api-types.js';
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
import { type Flag, usageLines } from '../cli/command-line.js';
import { ago, countsText, driftText, eventColumns, eventRow, labelsText } from '../cli/format.js';
import { type Cell, renderTable } from '../cli/render-table.js';

/** The flags of `get events` only. */
const EVENTS_FLAGS: readonly Flag[] = [
  { name: 'agent', value: 'NAME', help: "get events: only this agent's events" },
  { name: 'task', value: 'NAME', help: "get events: only this task's events" },
  { name: 'limit', value: 'N', help: 'get events: how many events (default 20)' },
];

const SPEC = apiCommand({
  name: 'get',
  synopsis: 'RESOURCE [flags]',
  about: `resources:
  agents              name, labels, connected, last seen, drift summary
  tasks               tasks, matched agent counts, status counts
  drift               every (agent, task) currently drifted or failing
  events              recent events, newest first`,
  flags: EVENTS_FLAGS,
});
const USAGE = usageLines(SPEC);

/** The events API pages at most this many per request. */
const EVENTS_PAGE_MAX = 1000;

export async function get(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, 'get', async () => {
    const ctx = commandContext(argv, SPEC, io);
    if (!ctx) return 0;
    const [resource, extra] = ctx.args.positionals;
    if (resource === undefined)
      throw new UsageError('missing RESOURCE: agents, tasks, drift or events', USAGE);
    if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}`, USAGE);
    if (resource !== 'events') {
      const misplaced = EVENTS_FLAGS.find((f) => ctx.args.flags[f.name] !== undefined);
      if (misplaced) throw new UsageError(`--${misplaced.name} applies to "get events" only`, USAGE);
    }
    switch (resource) {
      case 'agents':
      case 'agent':
        return getAgents(ctx, io);
      case 'tasks':
      case 'task':
        return getTasks(ctx, io);
      case 'drift':
        return getDrift(ctx, io);
      case 'events':
      case 'event':
        return getEvents(ctx, io);
      default:
        throw new UsageError(
          `unknown resource ${JSON.stringify(resource)}: agents, tasks, drift or events`,
          USAGE,
        );
    }
  });
}

function table(io: CliIo, headers: string[], rows: Cell[][], empty: string): number {
  if (rows.length === 0) io.stderr(`${empty}\n`);
  else io.stdout(renderTable(headers, rows, { width: io.columns }));
  return 0;
}

async function getAgents(ctx: CommandContext, io: CliIo): Promise<number> {
  const agents = await ctx.client.getAll<AgentView>('/api/v1/agents', 'agents');
  if (ctx.output === 'json') return printJson(io, agents);
  const now = io.now();
  return table(
    io,
    ['name', 'labels', 'connected', 'last seen', 'drift'],
    agents.map((a) => [
      a.name,
      labelsText(a.labels),
      a.connected ? 'yes' : 'no',
      ago(a.last_seen, now),
      driftText(a.drift),
    ]),
    'no agents',
  );
}

async function getTasks(ctx: CommandContext, io: CliIo): Promise<number> {
  const tasks = await ctx.client.getAll<TaskSummaryView>('/api/v1/tasks', 'tasks');
  if (ctx.output === 'json') return printJson(io, tasks);
  return table(
    io,
    ['name', 'policy', 'steps', 'agents', 'status', 'description'],
    tasks.map((t) => [
      t.name,
      t.policy,
      t.steps.length,
      t.matched_agents,
      countsText(t.status_counts),
      t.description,
    ]),
    'no tasks (no good commit yet?)',
  );
}

async function getDrift(ctx: CommandContext, io: CliIo): Promise<number> {
  const drift = await ctx.client.getAll<DriftEntry>('/api/v1/drift', 'drift');
  if (ctx.output === 'json') return printJson(io, drift);
  const now = io.now();
  return table(
    io,
    ['agent', 'task', 'outcome', 'steps', 'policy', 'mode', 'age', 'execution'],
    drift.map((d) => [
      d.agent,
      d.task,
      d.outcome,
      [...d.drifted_steps, ...d.failed_steps.filter((s) => !d.drifted_steps.includes(s))].join(','),
      d.policy,
      d.mode,
      ago(d.at, now),
      d.execution_id,
    ]),
    'no drift: every checked (agent, task) is satisfied or applied',
  );
}

async function getEvents(ctx: CommandContext, io: CliIo): Promise<number> {
  const { agent, task, limit: limitFlag } = ctx.args.flags;
  const limit = limitFlag === undefined ? 20 : Number(limitFlag);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit must be a positive whole number, not ${JSON.stringify(limitFlag)}`, USAGE);
  const query = {
    agent: typeof agent === 'string' ? agent : undefined,
    task: typeof task === 'string' ? task : undefined,
  };
  const events: FlukeEvent[] = [];
  let cursor: string | null = null;
  // More than one page only when --limit is over what the API hands out per request.
  do {
    const page: { events: FlukeEvent[]; next_cursor: string | null } = await ctx.client.get(
      '/api/v1/events',
      {
        ...query,
        limit: Math.min(EVENTS_PAGE_MAX, limit - events.length),
        cursor,
      },
    );
    events.push(...page.events.slice(0, limit - events.length));
    cursor = page.events.length > 0 ? (page.next_cursor ?? null) : null;
  } while (cursor !== null && events.length < limit);
  if (ctx.output === 'json') return printJson(io, events);
  const now = io.now();
  return table(
    io,
    eventColumns(true),
    events.map((e) => eventRow(e, now, true)),
    'no events',
  );
}

export function run(argv: string[]): Promise<number> {
  return get(argv, processIo());
}
