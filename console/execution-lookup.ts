/**
 * What the API knows about one execution (`GET /api/v1/executions/{id}`), pieced together from
 * what already exists, with no index of its own: the output replay list (lines, and the end
 * record once the result is in; kept an hour), the instruction record (while it runs and ten
 * minutes after), and the event its result produced (`task_run:<id>`, `timeout:<id>`,
 * `undeliverable:<id>`). An execution none of these remembers is unknown.
 */

import type { ExecutionView } from '../shared/api-types.js';
import { eventIdFor, type FlukeEvent } from '../shared/events.js';
import {
  type EndRecord,
  isEndRecord,
  type OutputRecord,
  parseStreamRecord,
  type StreamRecord,
} from '../shared/output-record.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';

export interface ExecutionSources {
  /** The replay list, oldest first, as stored (JSON texts); only its last entry when `lastOnly`. */
  readRecords(executionId: string, lastOnly: boolean): Promise<string[]>;
  instruction(
    instructionId: string,
  ): Promise<{ record: InstructionRecord; pending: string[]; outcomes?: Record<string, string> } | null>;
  event(agent: string, eventId: string): Promise<FlukeEvent | null>;
}

/** Execution ids are `<instruction id>.<task index>` (shared/plan.ts). */
export function instructionIdOf(executionId: string): string | null {
  const dot = executionId.lastIndexOf('.');
  return dot > 0 ? executionId.slice(0, dot) : null;
}

function outcomeOf(event: FlukeEvent | null): string | null {
  if (!event) return null;
  if (event.kind === 'task_run' || event.kind === 'timeout') return event.outcome;
  return event.kind;
}

/**
 * The outcome the instruction record holds for a task — the only trace of a quiet check, which
 * records no event; a task put back because the agent was busy (`requeued`) never ran here.
 */
function recordedOutcome(
  instruction: { outcomes?: Record<string, string> } | null,
  task: string | undefined,
): string | null {
  const outcome = task === undefined ? undefined : instruction?.outcomes?.[task];
  return outcome === undefined || outcome === 'requeued' ? null : outcome;
}

/** Pure: the view from what the sources returned. */
export function describeExecution(
  id: string,
  records: readonly StreamRecord[],
  instruction: { record: InstructionRecord; pending: string[]; outcomes?: Record<string, string> } | null,
  eventOf: (agent: string) => FlukeEvent | null,
): ExecutionView | null {
  const end = records.find(isEndRecord);
  const line = records.find((r): r is OutputRecord => !isEndRecord(r));
  const planned = instruction?.record.tasks.find((t) => t.execution_id === id);
  const agent = end?.agent ?? line?.agent ?? (planned ? instruction?.record.agent : undefined);
  const task = end?.task ?? line?.task ?? planned?.task;
  if (agent === undefined || task === undefined) return null;
  const event = eventOf(agent);
  const finishedInRecord = planned !== undefined && !instruction?.pending.includes(planned.task);
  return {
    id,
    agent,
    task,
    done: end !== undefined || event !== null || finishedInRecord,
    outcome: end?.outcome ?? outcomeOf(event) ?? recordedOutcome(instruction, planned?.task),
    event,
  };
}

/** The execution and its buffered output (end record excluded), or null if unknown. */
export async function findExecution(
  id: string,
  sources: ExecutionSources,
  /** `false`: only whether and how it ended (the end record is always the list's last entry). */
  options: { withOutput: boolean } = { withOutput: true },
): Promise<{ execution: ExecutionView; output: OutputRecord[]; end: EndRecord | null } | null> {
  const instructionId = instructionIdOf(id);
  const [texts, instruction] = await Promise.all([
    sources.readRecords(id, !options.withOutput),
    instructionId ? sources.instruction(instructionId) : Promise.resolve(null),
  ]);
  const records = texts.flatMap((t) => parseStreamRecord(t) ?? []);
  // Who ran it is needed to find its event: learn it first, then fetch the event.
  const probe = describeExecution(id, records, instruction, () => null);
  if (!probe) return null;
  const candidates = await Promise.all(
    (['task_run', 'timeout', 'undeliverable'] as const).map((kind) =>
      sources.event(probe.agent, eventIdFor(kind, id)),
    ),
  );
  const event = candidates.find((e) => e !== null) ?? null;
  const execution = describeExecution(id, records, instruction, () => event) as ExecutionView;
  return {
    execution,
    output: records.filter((r): r is OutputRecord => !isEndRecord(r)),
    end: records.find(isEndRecord) ?? null,
  };
}
