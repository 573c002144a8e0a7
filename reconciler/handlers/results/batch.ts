/**
 * A batched results job (one gateway flush): each agent's messages are handled in arrival order,
 * agents side by side, in three steps:
 * 1. Read everything the job names, for all its agents at once: the instruction records (one
 *    pipeline) and the statuses and episodes of each agent with results (one snapshot each, one
 *    pipeline).
 * 2. Ask the rulebook (shared/result-rules.ts) about each message against that state,
 *    synchronously. Effects that only change statuses, events, run progress and finished tasks,
 *    which is nearly all of them, are applied to the in-memory state and their writes collected.
 *    The others (an alert to send, an episode to open or close, a busy receipt, a refusal) are
 *    applied as the single-message handler applies them, on deps that read and write the same
 *    state, as they come, in its order: alert enqueued before it is claimed. A message naming
 *    another agent's instruction is dropped (logged, counted as `foreign_instruction`). Labels are
 *    read once per agent, when an event or alert needs them.
 * 3. Write, each step for every agent at once: the events (each task index and the global one
 *    once), then the statuses, then run progress, then each instruction's finished tasks
 *    (completing it). A status is still written before its task is finished, so a crash in
 *    between leaves the task pending and the retried job (every step is idempotent: event ids,
 *    alert ids and the duplicate check on the status) writes it again.
 * A failed read fails the job before anything is written. An agent whose judging or writing fails
 * stops there; the other agents' parts still run, then the job throws, to be retried.
 */
import type { FlukeEvent } from '../../../shared/events.js';
import type { ResultJob } from '../../../shared/jobs/payloads.js';
import type { Settle } from '../../../store/instructions/instruction-store.js';
import type { AgentSnapshot, StatusWrite } from '../../../store/statuses/status-store.js';
import { AgentBatch, type BatchItem, type Found, type RunOutcome } from './agent-batch.js';
import type { ResultDeps } from './deps.js';

type ResultsBatch = Extract<ResultJob, { kind: 'results' }>;

export async function resultsHandler(job: ResultsBatch, deps: ResultDeps): Promise<Record<string, number>> {
  const now = (deps.now ?? (() => new Date()))();
  const byAgent = new Map<string, BatchItem[]>();
  for (const item of job.items) {
    const list = byAgent.get(item.agent);
    if (list) list.push(item);
    else byAgent.set(item.agent, [item]);
  }
  const batches: AgentBatch[] = [];
  for (const [agent, items] of byAgent) batches.push(new AgentBatch(agent, items, deps, now));
  await prefetch(batches, deps);

  const counts: Record<string, number> = {};
  const failures: unknown[] = [];
  const judged = await Promise.allSettled(batches.map((b) => b.judgeAll(job.gateway_id, counts)));
  let live = batches.filter((_, i) => {
    const s = judged[i] as PromiseSettledResult<void>;
    if (s.status === 'rejected') failures.push(s.reason);
    return s.status === 'fulfilled';
  });
  const keep = (results: readonly PromiseSettledResult<unknown>[], of: readonly AgentBatch[]) => {
    const failed = new Set<AgentBatch>();
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      failures.push(r.reason);
      failed.add(of[i] as AgentBatch);
    });
    live = live.filter((b) => !failed.has(b));
  };

  // The events of every agent judged, together: each task index and the global one written once.
  await recordEvents(
    deps,
    live.flatMap((b) => b.takeEvents()),
  );
  const writing = live.filter((b) => b.hasStatuses());
  keep(
    await setStatusesMany(
      deps,
      writing.map((b) => b.takeStatuses()),
    ),
    writing,
  );
  const running = live.filter((b) => b.hasRunOutcomes());
  keep(await Promise.allSettled(running.map((b) => writeRunOutcomes(deps, b.runOutcomes))), running);
  const settles: Settle[] = [];
  const settling: AgentBatch[] = [];
  for (const b of live) {
    for (const settle of b.settles()) {
      settles.push(settle);
      settling.push(b);
    }
  }
  keep(await settleMany(deps, settles), settling);
  if (failures.length > 0) throw failures[0];
  return counts;
}

/** Not async: what waits for the writes is the store's serialised form, not the events. */
function recordEvents(deps: ResultDeps, events: FlukeEvent[]): Promise<unknown> {
  if (events.length === 0) return Promise.resolve();
  if (deps.events.recordMany) return deps.events.recordMany(events);
  return (async () => {
    for (const event of events) await deps.events.record(event);
  })();
}

/** Step 1: every instruction record and snapshot the batches need, read together. */
async function prefetch(batches: readonly AgentBatch[], deps: ResultDeps): Promise<void> {
  const ids: string[] = [];
  const seen = new Set<string>();
  const agents: string[] = [];
  const tasks: string[][] = [];
  for (const b of batches) {
    for (const id of b.instructionIds) {
      if (seen.has(id)) continue;
      seen.add(id);
      ids.push(id);
    }
    if (b.resultTasks.length > 0) {
      agents.push(b.agent);
      tasks.push(b.resultTasks);
    }
  }
  const { instructions, statuses } = deps;
  const [found, snapshots] = await Promise.all([
    instructions.getMany ? instructions.getMany(ids) : Promise.all(ids.map((id) => instructions.get(id))),
    // Only the statuses of the tasks the job has results for (an agent's results often span jobs).
    statuses.snapshots(agents, tasks),
  ]);
  const byId = new Map<string, Found | null>();
  ids.forEach((id, i) => {
    byId.set(id, found[i] ?? null);
  });
  const snapshotOf = new Map<string, AgentSnapshot>();
  agents.forEach((agent, i) => {
    snapshotOf.set(agent, snapshots[i] as AgentSnapshot);
  });
  const handedOut = new Set<string>();
  for (const b of batches) {
    const mine = new Map<string, Found | null>();
    for (const id of b.instructionIds) {
      const f = byId.get(id) ?? null;
      // Each agent keeps its own pending list (a forged result may name another agent's
      // instruction; it is dropped, but the record is read before that is known).
      mine.set(id, f && handedOut.has(id) ? { record: f.record, pending: [...f.pending] } : f);
      handedOut.add(id);
    }
    b.prefetched(mine, snapshotOf.get(b.agent) ?? null);
  }
}

function setStatusesMany(deps: ResultDeps, writes: StatusWrite[]): Promise<PromiseSettledResult<void>[]> {
  if (writes.length === 0) return Promise.resolve([]);
  return deps.statuses.setStatusesMany(writes);
}

async function writeRunOutcomes(deps: ResultDeps, outcomes: readonly RunOutcome[]): Promise<void> {
  const byRun = new Map<string, RunOutcome[]>();
  for (const o of outcomes) {
    const list = byRun.get(o.run);
    if (list) list.push(o);
    else byRun.set(o.run, [o]);
  }
  await Promise.all(
    [...byRun].map(async ([run, list]) => {
      if (deps.runs.setOutcomes) return deps.runs.setOutcomes(run, list);
      for (const o of list) await deps.runs.setOutcome(run, o.agent, o.task, o.outcome);
    }),
  );
}

function settleMany(deps: ResultDeps, settles: Settle[]): Promise<PromiseSettledResult<unknown>[]> {
  if (settles.length === 0) return Promise.resolve([]);
  const instructions = deps.instructions;
  if (instructions.settleMany) return instructions.settleMany(settles);
  return Promise.allSettled(
    settles.map(async ({ instruction_id: id, done, complete }) => {
      const left = done.length > 0 ? await finishMany(deps, id, done) : -1;
      if (left === 0 || complete) await instructions.complete(id);
      return left;
    }),
  );
}

async function finishMany(deps: ResultDeps, id: string, done: Settle['done']): Promise<number> {
  let left = 0;
  for (const d of done) left = await deps.instructions.finishTask(id, d.task, d.outcome);
  return left;
}
