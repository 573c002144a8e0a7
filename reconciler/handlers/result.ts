/**
 * Results from agents (through the gateways' `results` queue): record the event, judge the result
 * against the last status and the drift episode, enqueue alerts, update status and progress.
 * At-least-once safe: event ids and alert ids are derived from the execution, alerts are enqueued
 * (deduplicated by job id) before being claimed, and the status is written last.
 */
import type { Logger } from 'pino';
import type { Alert } from '../../shared/alerts.js';
import {
  type FlukeEvent,
  isQuietCheck,
  type RunContext,
  taskRunEvent,
  timeoutEvent,
  undeliverableEvent,
} from '../../shared/events.js';
import { driftedSteps, judge, type Observation, type Verdict } from '../../shared/judge.js';
import { sortAlerts, type TaskStatus } from '../../shared/status.js';
import type { Labels, TaskOutcome } from '../../shared/types.js';
import type { EventStore } from '../../store/events/event-store.js';
import type {
  InstructionRecord,
  InstructionStore,
  Settle,
} from '../../store/instructions/instruction-store.js';
import type { RunStore } from '../../store/runs/run-store.js';
import type { AgentSnapshot, StatusStore, StatusWrite } from '../../store/statuses/status-store.js';
import type { ReconcileAgentJob, ResultJob } from '../jobs.js';

/** What handling one message (or timing out tasks) reads and writes of the status store. */
export type MessageStatuses = Pick<
  StatusStore,
  'getStatus' | 'setStatus' | 'getEpisode' | 'openEpisode' | 'markAlerted' | 'closeEpisode'
>;

/** The dependencies of one message's handling (and of timeOutTasks). */
export interface MessageDeps {
  instructions: Pick<InstructionStore, 'get' | 'finishTask' | 'complete'> &
    Partial<Pick<InstructionStore, 'getMany' | 'settleMany'>>;
  events: Pick<EventStore, 'record'> & Partial<Pick<EventStore, 'recordMany'>>;
  statuses: MessageStatuses;
  runs: Pick<RunStore, 'setOutcome' | 'setAgentState'> & Partial<Pick<RunStore, 'setOutcomes'>>;
  labelsOf(agent: string): Promise<Labels>;
  enqueueAlert(alert: Alert): Promise<void>;
  /** Put a reconcile back because the agent was busy with one of its tasks. */
  retryLater(job: ReconcileAgentJob, delayMs: number): Promise<void>;
  logger: Logger;
  now?: () => Date;
}

/**
 * resultHandler's dependencies: a batched results job also reads snapshots and writes many
 * agents' statuses at once.
 */
export interface ResultDeps extends MessageDeps {
  statuses: MessageStatuses & Pick<StatusStore, 'snapshot' | 'snapshots' | 'setStatusesMany'>;
}

/** A busy agent is asked again this often, this many times, before the run gives up on it. */
export const BUSY_RETRY_MS = 2000;
export const BUSY_RETRIES = 150;

type TaskRef = InstructionRecord['tasks'][number];

function plannedTask(record: InstructionRecord, task: string): TaskRef | undefined {
  return record.tasks.find((t) => t.task === task);
}

async function judgeAndApply(
  deps: MessageDeps,
  record: InstructionRecord,
  planned: TaskRef,
  labelsOf: () => Promise<Labels>,
  observation: Observation,
  now: Date,
  /** The task's status, when the caller read it already. */
  known?: { previous: TaskStatus | null },
): Promise<void> {
  const agent = record.agent;
  const [previous, episode] = await Promise.all([
    known ? known.previous : deps.statuses.getStatus(agent, planned.task),
    deps.statuses.getEpisode(agent, planned.task),
  ]);
  const input = {
    agent: { name: agent, labels: {} },
    task: planned.task,
    policy: planned.policy,
    mode: planned.mode,
    revision: record.revision,
    now: now.toISOString(),
    previous,
    episode,
    observation,
  };
  let verdict = judge(input);
  // Labels appear only in alert payloads: read them (one registry read) only when alerting.
  if (verdict.alerts.length > 0)
    verdict = judge({ ...input, agent: { name: agent, labels: await labelsOf() } });
  if (verdict.ignored) return;
  if (verdict.openEpisode) await deps.statuses.openEpisode(agent, verdict.openEpisode);
  for (const alert of verdict.alerts) {
    // Enqueue first (the job id deduplicates), then claim: a crash in between cannot lose the alert.
    await deps.enqueueAlert(alert);
    await deps.statuses.markAlerted(agent, planned.task, alert.episode_id, alert.payload.event);
  }
  if (verdict.closeEpisode) await deps.statuses.closeEpisode(agent, planned.task, verdict.closeEpisode);
  if (verdict.status) await deps.statuses.setStatus(agent, verdict.status);
}

async function finish(
  deps: MessageDeps,
  record: InstructionRecord,
  task: string,
  outcome: TaskOutcome | 'undeliverable',
) {
  if (record.run_id) await deps.runs.setOutcome(record.run_id, record.agent, task, outcome);
  const left = await deps.instructions.finishTask(record.instruction_id, task, outcome);
  if (left === 0) await deps.instructions.complete(record.instruction_id);
}

/** The agent's labels, read at most once and only if an event or alert needs them. */
function lazyLabels(deps: MessageDeps, agent: string): () => Promise<Labels> {
  let labels: Promise<Labels> | null = null;
  return () => {
    labels ??= deps.labelsOf(agent);
    return labels;
  };
}

function context(record: InstructionRecord, planned: TaskRef, labels: Labels, at: Date): RunContext {
  return {
    agent: record.agent,
    labels,
    revision: record.revision,
    trigger: record.trigger,
    policy: planned.policy,
    instruction_id: record.instruction_id,
    at,
  };
}

export async function resultHandler(job: ResultJob, deps: ResultDeps): Promise<string> {
  if (job.kind === 'results') return JSON.stringify(await resultsHandler(job, deps));
  return messageHandler(job, deps);
}

/** One message, or an undeliverable instruction. */
async function messageHandler(job: Exclude<ResultJob, ResultsBatch>, deps: MessageDeps): Promise<string> {
  const now = (deps.now ?? (() => new Date()))();
  const instructionId = job.kind === 'undeliverable' ? job.instruction_id : job.message.instruction_id;
  const found = await deps.instructions.get(instructionId);
  // Unknown: finished and removed already (a redelivered job) or expired. Nothing left to do.
  if (!found) return 'unknown_instruction';
  const { record, pending } = found;
  const labels = lazyLabels(deps, record.agent);

  if (job.kind === 'undeliverable') {
    for (const planned of record.tasks.filter((t) => pending.includes(t.task))) {
      const ctx = context(record, planned, await labels(), now);
      await deps.events.record(undeliverableEvent({ ...planned, reason: job.reason }, ctx));
      await finish(deps, record, planned.task, 'undeliverable');
    }
    return 'undeliverable';
  }

  const message = job.message;
  switch (message.type) {
    case 'instruction_receipt': {
      if (message.accepted) return 'accepted';
      const reason = message.reason ?? '';
      if (reason.startsWith('duplicate')) return 'duplicate';
      const busy = reason.includes('already executing');
      if (busy && record.trigger === 'drift_check') {
        // The agent is applying that task right now: its result will say more than this check.
        for (const task of pending)
          await deps.instructions.finishTask(record.instruction_id, task, 'requeued');
        await deps.instructions.complete(record.instruction_id);
        return 'busy_skipped';
      }
      if (busy && record.retry < BUSY_RETRIES) {
        // A redelivered receipt: its tasks were re-queued already, and one retry is enough.
        if (pending.length === 0) return 'busy';
        // Same agent, same run, same task filter; a new job id makes a new instruction id.
        await deps.retryLater(
          {
            agent: record.agent,
            trigger: record.trigger,
            run_id: record.run_id,
            tasks: record.tasks.map((t) => t.task),
            retry: record.retry + 1,
          },
          BUSY_RETRY_MS,
        );
        for (const task of pending)
          await deps.instructions.finishTask(record.instruction_id, task, 'requeued');
        await deps.instructions.complete(record.instruction_id);
        return 'busy';
      }
      deps.logger.warn(
        { agent: record.agent, instruction_id: record.instruction_id, reason },
        'instruction refused',
      );
      for (const planned of record.tasks.filter((t) => pending.includes(t.task))) {
        await deps.events.record(
          undeliverableEvent(
            { ...planned, reason: `refused: ${reason}` },
            context(record, planned, await labels(), now),
          ),
        );
        await finish(deps, record, planned.task, 'undeliverable');
      }
      return 'refused';
    }
    case 'step_result':
      return 'progress';
    case 'check_result': {
      const planned = plannedTask(record, message.task);
      if (!planned) return 'unknown_task';
      await judgeAndApply(
        deps,
        record,
        planned,
        labels,
        {
          type: 'check_result',
          execution_id: message.execution_id,
          step: message.step,
          satisfied: message.satisfied,
        },
        now,
      );
      return 'check';
    }
    case 'task_result': {
      const planned = plannedTask(record, message.task);
      if (!planned) return 'unknown_task';
      const previous = await deps.statuses.getStatus(record.agent, planned.task);
      const quiet = isQuietCheck(previous, {
        trigger: record.trigger,
        revision: record.revision,
        outcome: message.outcome,
        drifted_steps: driftedSteps(message.steps),
      });
      if (!quiet)
        await deps.events.record(taskRunEvent(message, context(record, planned, await labels(), now)));
      await judgeAndApply(
        deps,
        record,
        planned,
        labels,
        {
          type: 'task_result',
          execution_id: message.execution_id,
          outcome: message.outcome,
          steps: message.steps,
        },
        now,
        { previous },
      );
      await finish(deps, record, planned.task, message.outcome);
      return message.outcome;
    }
  }
}

/** The deadline passed: every pending task of the instruction becomes a `timeout`. */
export async function timeOutTasks(
  deps: MessageDeps,
  record: InstructionRecord,
  tasks: string[],
  waitedMs: number,
): Promise<void> {
  const now = (deps.now ?? (() => new Date()))();
  const labels = lazyLabels(deps, record.agent);
  for (const planned of record.tasks.filter((t) => tasks.includes(t.task))) {
    await deps.events.record(
      timeoutEvent({ ...planned, waited_ms: waitedMs }, context(record, planned, await labels(), now)),
    );
    await judgeAndApply(
      deps,
      record,
      planned,
      labels,
      { type: 'timeout', execution_id: planned.execution_id },
      now,
    );
    await finish(deps, record, planned.task, 'timeout');
  }
}

type ResultsBatch = Extract<ResultJob, { kind: 'results' }>;
type BatchItem = ResultsBatch['items'][number];

/**
 * A batched results job (one gateway flush): each agent's messages are handled in arrival order,
 * agents side by side, in three steps:
 * 1. Read everything the job names, for all its agents at once: the instruction records (one
 *    pipeline) and the statuses and episodes of each agent with results (one snapshot each, one
 *    pipeline).
 * 2. Judge each message against that state, synchronously (the judge is pure). Messages that only
 *    change statuses, events, run progress and finished tasks, which is nearly all of them, are
 *    applied to the in-memory state and their writes collected. The others (an alert to send, an
 *    episode to open or close, a busy receipt, a refusal, another agent's instruction) go through
 *    resultHandler on deps that read and write the same state, as they come, in its order: alert
 *    enqueued before it is claimed. Labels are read once per agent, when an event or alert needs
 *    them.
 * 3. Write, each step for every agent at once: the events (each task index and the global one
 *    once), then the statuses, then run progress, then each instruction's finished tasks
 *    (completing it). A status is still written before its task is finished, so a crash in
 *    between leaves the task pending and the retried job (every step is idempotent: event ids,
 *    alert ids and the duplicate check on the status) writes it again.
 * A failed read fails the job before anything is written. An agent whose judging or writing fails
 * stops there; the other agents' parts still run, then the job throws, to be retried.
 */
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
      // Each agent keeps its own pending list (a result may name another agent's instruction).
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

type Found = { record: InstructionRecord; pending: string[] };
type RunOutcome = { run: string; agent: string; task: string; outcome: string };

/** fast(): the message records an event, which needs the agent's labels: read them, then again. */
const NEED_LABELS = 0;
/** fast(): the message needs resultHandler (a rare path). */
const SLOW = 1;

const NO_LABELS: Labels = Object.freeze({}) as Labels;

/**
 * A verdict the batch applies by itself: no alert, and no episode change. A verdict that opens an
 * episode and closes that same episode (a first `applied` with nothing to alert) leaves the
 * store as it was, and counts as no change.
 */
function inline(verdict: Verdict): boolean {
  if (verdict.alerts.length > 0) return false;
  if (verdict.openEpisode === null) return verdict.closeEpisode === null;
  return verdict.closeEpisode === verdict.openEpisode.id;
}

/**
 * One agent's share of a batch: the state read up front (instruction records, snapshot, labels),
 * judged against in memory, and the writes collected for the job's write steps. The rare paths
 * run the single-message handler on `deps`, MessageDeps over the same state: reads come from
 * it, statuses, finished tasks, run progress and events are collected, and everything else
 * (episodes, alerts, retries) is written at once, as before.
 */
class AgentBatch {
  readonly instructionIds: string[] = [];
  /** The tasks of its results (judged against their statuses), once each. */
  readonly resultTasks: string[] = [];
  readonly runOutcomes: RunOutcome[] = [];
  private readonly nowIso: string;
  /** Instruction records by id; null once unknown or completed (a re-read would find it done). */
  private readonly found = new Map<string, Found | null>();
  private snapshot: AgentSnapshot | null = null;
  private snapshotRead: Promise<AgentSnapshot> | null = null;
  /** The agent's labels, read once, when an event or alert needs them. */
  private readonly readLabels: () => Promise<Labels>;
  private labels: Labels | undefined;
  private readonly judgeAgent: { name: string; labels: Labels };
  /**
   * Statuses to write, by task: read over the snapshot, whose statuses stay what was stored
   * before this job (setStatuses learns from them which problem-index entries cannot exist).
   */
  private readonly statusOut = new Map<string, TaskStatus>();
  private readonly finished = new Map<string, Array<{ task: string; outcome: string }>>();
  private readonly completed = new Set<string>();
  private readonly events: FlukeEvent[] = [];
  private slowDeps: MessageDeps | null = null;

  constructor(
    readonly agent: string,
    private items: readonly BatchItem[] | null,
    private readonly base: ResultDeps,
    private readonly now: Date,
  ) {
    this.nowIso = now.toISOString();
    this.judgeAgent = { name: agent, labels: NO_LABELS };
    this.readLabels = lazyLabels(base, agent);
    for (const { message } of items ?? []) {
      const result = message.type === 'check_result' || message.type === 'task_result';
      if (result && !this.resultTasks.includes(message.task)) this.resultTasks.push(message.task);
      if (!this.instructionIds.includes(message.instruction_id))
        this.instructionIds.push(message.instruction_id);
    }
  }

  prefetched(found: ReadonlyMap<string, Found | null>, snapshot: AgentSnapshot | null): void {
    for (const [id, f] of found) this.found.set(id, f);
    this.snapshot = snapshot;
  }

  async judgeAll(gatewayId: string, counts: Record<string, number>): Promise<void> {
    const items = this.items ?? [];
    this.items = null;
    for (const item of items) {
      let outcome = this.fast(item.message);
      if (outcome === NEED_LABELS) {
        this.labels = await this.readLabels();
        outcome = this.fast(item.message);
      }
      if (typeof outcome !== 'string') {
        outcome = await messageHandler(
          {
            kind: 'result',
            agent: item.agent,
            session_id: item.session_id,
            gateway_id: gatewayId,
            received_at: item.received_at,
            message: item.message,
          },
          this.deps,
        );
      }
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    }
    // Judging is over: let the records go while the writes are on their way (a job holds dozens
    // of agents for several round trips, and whatever it holds, each young-generation GC copies).
    this.found.clear();
  }

  /**
   * Judges and applies one message against the batch's state, if it needs nothing but that:
   * its outcome. NEED_LABELS before anything changed, when it records an event and the labels
   * are not read yet; SLOW, with nothing changed, for resultHandler.
   */
  private fast(message: BatchItem['message']): string | typeof NEED_LABELS | typeof SLOW {
    const found = this.found.get(message.instruction_id);
    if (found === undefined) return SLOW;
    if (found === null) return 'unknown_instruction';
    const record = found.record;
    if (record.agent !== this.agent) return SLOW;
    switch (message.type) {
      case 'instruction_receipt':
        if (message.accepted) return 'accepted';
        if ((message.reason ?? '').startsWith('duplicate')) return 'duplicate';
        return SLOW;
      case 'step_result':
        return 'progress';
      case 'check_result': {
        const planned = plannedTask(record, message.task);
        if (!planned) return 'unknown_task';
        const snap = this.snapshot;
        if (!snap) return SLOW;
        // The message is the observation (shared/judge.ts: CheckResultMessage fits).
        const verdict = this.judgeOne(record, planned, snap, this.statusOf(snap, planned.task), message);
        if (verdict.ignored === null) {
          if (!inline(verdict)) return SLOW;
          if (verdict.status) this.statusOut.set(planned.task, verdict.status);
        }
        return 'check';
      }
      case 'task_result': {
        const planned = plannedTask(record, message.task);
        if (!planned) return 'unknown_task';
        const snap = this.snapshot;
        if (!snap) return SLOW;
        const previous = this.statusOf(snap, planned.task);
        const quiet = isQuietCheck(previous, {
          trigger: record.trigger,
          revision: record.revision,
          outcome: message.outcome,
          drifted_steps: driftedSteps(message.steps),
        });
        if (!quiet && this.labels === undefined) return NEED_LABELS;
        const verdict = this.judgeOne(record, planned, snap, previous, message);
        if (verdict.ignored === null && !inline(verdict)) return SLOW;
        // As resultHandler: the event, the status, then the task finished.
        if (!quiet)
          this.events.push(
            taskRunEvent(message, context(record, planned, this.labels ?? NO_LABELS, this.now)),
          );
        if (verdict.ignored === null && verdict.status) this.statusOut.set(planned.task, verdict.status);
        // Strings from the message, not the record: what waits for the writes keeps no record alive.
        if (record.run_id)
          this.runOutcomes.push({
            run: record.run_id,
            agent: this.agent,
            task: message.task,
            outcome: message.outcome,
          });
        this.finishTask(message.instruction_id, found, message.task, message.outcome, true);
        return message.outcome;
      }
    }
  }

  /** The judge's verdict on one observation, against the job's prefetched state. */
  private judgeOne(
    record: InstructionRecord,
    planned: TaskRef,
    snap: AgentSnapshot,
    previous: TaskStatus | null,
    observation: Observation,
  ): Verdict {
    return judge({
      agent: this.judgeAgent,
      task: planned.task,
      policy: planned.policy,
      mode: planned.mode,
      revision: record.revision,
      now: this.nowIso,
      previous,
      episode: snap.episodes.get(planned.task) ?? null,
      observation,
    });
  }

  /** The task's status as this batch knows it: written by it, or as stored before. */
  private statusOf(snap: AgentSnapshot, task: string): TaskStatus | null {
    return this.statusOut.get(task) ?? snap.statuses.get(task) ?? null;
  }

  /**
   * What InstructionStore.finishTask then complete do, to the batch's state: tasks left.
   * `inPlace` when no resultHandler call holds the pending list (it iterates its own copy).
   */
  private finishTask(
    id: string,
    found: Found | null,
    task: string,
    outcome: string,
    inPlace = false,
  ): number {
    const list = this.finished.get(id);
    if (list) list.push({ task, outcome });
    else this.finished.set(id, [{ task, outcome }]);
    if (!found) return 0;
    const at = found.pending.indexOf(task);
    if (at >= 0) {
      // In place, the last one moved into the gap: only the count and membership matter here.
      if (inPlace) {
        const last = found.pending.pop() as string;
        if (at < found.pending.length) found.pending[at] = last;
      } else found.pending = found.pending.filter((t) => t !== task);
    }
    if (found.pending.length === 0) this.complete(id);
    return found.pending.length;
  }

  private complete(id: string): void {
    this.completed.add(id);
    // Later messages of this batch see what a re-read would: the record is done.
    this.found.set(id, null);
  }

  private async snap(): Promise<AgentSnapshot> {
    if (!this.snapshot) {
      this.snapshotRead ??= this.base.statuses.snapshot(this.agent);
      this.snapshot = await this.snapshotRead;
    }
    return this.snapshot;
  }

  private async getFound(id: string): Promise<Found | null> {
    const known = this.found.get(id);
    if (known !== undefined) return known;
    const found = await this.base.instructions.get(id);
    // Another message may have read or completed it meanwhile: the first answer stands.
    if (!this.found.has(id)) this.found.set(id, found);
    return this.found.get(id) ?? null;
  }

  /**
   * MessageDeps over the batch's state, for the single-message handler. Cached and deferred for
   * this agent only; a result naming another agent's instruction goes straight through, as the
   * single-message handler would write it.
   */
  private get deps(): MessageDeps {
    if (this.slowDeps) return this.slowDeps;
    const base = this.base;
    const agent = this.agent;
    const mine = (a: string) => a === agent;
    const statuses: MessageStatuses = {
      setStatus: async (a, status) => {
        if (!mine(a)) return base.statuses.setStatus(a, status);
        await this.snap();
        this.statusOut.set(status.task, status);
      },
      getStatus: async (a, task) =>
        mine(a) ? this.statusOf(await this.snap(), task) : base.statuses.getStatus(a, task),
      getEpisode: async (a, task) =>
        mine(a) ? ((await this.snap()).episodes.get(task) ?? null) : base.statuses.getEpisode(a, task),
      openEpisode: async (a, episode) => {
        const opened = await base.statuses.openEpisode(a, episode);
        if (!mine(a)) return opened;
        const snap = await this.snap();
        if (opened) snap.episodes.set(episode.task, { ...episode, alerts: [] });
        else {
          const now = await base.statuses.getEpisode(a, episode.task);
          if (now) snap.episodes.set(episode.task, now);
          else snap.episodes.delete(episode.task);
        }
        return opened;
      },
      markAlerted: async (a, task, episodeId, event) => {
        const claimed = await base.statuses.markAlerted(a, task, episodeId, event);
        if (!mine(a)) return claimed;
        const open = (await this.snap()).episodes.get(task);
        if (claimed && open && open.id === episodeId && !open.alerts.includes(event)) {
          open.alerts = sortAlerts([...open.alerts, event]);
        }
        return claimed;
      },
      closeEpisode: async (a, task, episodeId) => {
        const closed = await base.statuses.closeEpisode(a, task, episodeId);
        if (closed && mine(a)) (await this.snap()).episodes.delete(task);
        return closed;
      },
    };
    this.slowDeps = {
      ...base,
      now: () => this.now,
      statuses,
      labelsOf: (a) => (a === agent ? this.readLabels() : base.labelsOf(a)),
      events: {
        // Written together by resultsHandler, before any status.
        record: async (event) => {
          this.events.push(event);
          return true;
        },
      },
      runs: {
        // Written after the statuses, as resultHandler orders them.
        setOutcome: async (run, a, task, outcome) => {
          this.runOutcomes.push({ run, agent: a, task, outcome });
        },
        setAgentState: base.runs.setAgentState.bind(base.runs),
      },
      instructions: {
        get: (id) => this.getFound(id),
        finishTask: async (id, task, outcome) => this.finishTask(id, await this.getFound(id), task, outcome),
        complete: async (id) => this.complete(id),
      },
    };
    return this.slowDeps;
  }

  /** The events to record before any status, handed over once. */
  takeEvents(): FlukeEvent[] {
    return this.events.splice(0);
  }

  hasStatuses(): boolean {
    return this.statusOut.size > 0;
  }

  /** The statuses to write, handed over once, with the snapshot they replace (then let go). */
  takeStatuses(): StatusWrite {
    const write = {
      agent: this.agent,
      statuses: [...this.statusOut.values()],
      previous: this.snapshot?.statuses,
    };
    this.statusOut.clear();
    this.snapshot = null;
    this.snapshotRead = null;
    return write;
  }

  hasRunOutcomes(): boolean {
    return this.runOutcomes.length > 0;
  }

  /** Each instruction's finished tasks, and whether to complete it even with tasks left. */
  settles(): Settle[] {
    const out: Settle[] = [];
    for (const [id, done] of this.finished)
      out.push({ instruction_id: id, done, complete: this.completed.has(id) });
    for (const id of this.completed) {
      if (!this.finished.has(id)) out.push({ instruction_id: id, done: [], complete: true });
    }
    return out;
  }
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

async function finishMany(deps: ResultDeps, id: string, done: Settle['done']): Promise<number> {
  let left = 0;
  for (const d of done) left = await deps.instructions.finishTask(id, d.task, d.outcome);
  return left;
}
