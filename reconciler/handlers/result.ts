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
import { driftedSteps, judge, type Observation } from '../../shared/judge.js';
import { sortAlerts, type TaskStatus } from '../../shared/status.js';
import type { Labels, TaskOutcome } from '../../shared/types.js';
import type { EventStore } from '../event-store/event-store.js';
import type { InstructionRecord, InstructionStore } from '../instruction-store.js';
import type { ReconcileAgentJob, ResultJob } from '../jobs.js';
import type { RunStore } from '../run-store.js';
import type { StatusStore } from '../status-store/status-store.js';

export interface ResultDeps {
  instructions: Pick<InstructionStore, 'get' | 'finishTask' | 'complete'> &
    Partial<Pick<InstructionStore, 'finishTasks'>>;
  events: Pick<EventStore, 'record'> & Partial<Pick<EventStore, 'recordMany'>>;
  statuses: StatusStore;
  runs: Pick<RunStore, 'setOutcome' | 'setAgentState'>;
  labelsOf(agent: string): Promise<Labels>;
  enqueueAlert(alert: Alert): Promise<void>;
  /** Put a reconcile back because the agent was busy with one of its tasks. */
  retryLater(job: ReconcileAgentJob, delayMs: number): Promise<void>;
  logger: Logger;
  now?: () => Date;
}

/** A busy agent is asked again this often, this many times, before the run gives up on it. */
export const BUSY_RETRY_MS = 2000;
export const BUSY_RETRIES = 150;

type TaskRef = InstructionRecord['tasks'][number];

async function judgeAndApply(
  deps: ResultDeps,
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
  deps: ResultDeps,
  record: InstructionRecord,
  task: string,
  outcome: TaskOutcome | 'undeliverable',
) {
  if (record.run_id) await deps.runs.setOutcome(record.run_id, record.agent, task, outcome);
  const left = await deps.instructions.finishTask(record.instruction_id, task, outcome);
  if (left === 0) await deps.instructions.complete(record.instruction_id);
}

/** The agent's labels, read at most once and only if an event or alert needs them. */
function lazyLabels(deps: ResultDeps, agent: string): () => Promise<Labels> {
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
      const planned = record.tasks.find((t) => t.task === message.task);
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
      const planned = record.tasks.find((t) => t.task === message.task);
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
  deps: ResultDeps,
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

/**
 * A batched results job (one gateway flush): each agent's messages are handled in arrival order,
 * agents side by side. Per agent, the instruction records and labels are read once, the statuses
 * and episodes once (one snapshot), events are written side by side, and then, in this order:
 * every status in one write, then each instruction's finished tasks in one call. A status is
 * still written before its task is finished, so a crash in between leaves the task pending and
 * the retried job (every step is idempotent) writes it again. Throws if any agent's part failed,
 * after the other agents' parts ran, so the job is retried.
 */
export async function resultsHandler(job: ResultsBatch, deps: ResultDeps): Promise<Record<string, number>> {
  const byAgent = new Map<string, ResultsBatch['items']>();
  for (const item of job.items) {
    const list = byAgent.get(item.agent);
    if (list) list.push(item);
    else byAgent.set(item.agent, [item]);
  }
  const counts: Record<string, number> = {};
  // 1. Each agent's messages judged in order (episodes and alerts written as they come).
  const judged = await Promise.allSettled(
    [...byAgent].map(async ([agent, items]) => {
      const batch = new AgentBatch(agent, deps);
      for (const item of items) {
        const outcome = await resultHandler(
          {
            kind: 'result',
            agent: item.agent,
            session_id: item.session_id,
            gateway_id: job.gateway_id,
            received_at: item.received_at,
            message: item.message,
          },
          batch.deps,
        );
        counts[outcome] = (counts[outcome] ?? 0) + 1;
      }
      return batch;
    }),
  );
  const batches = judged.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  // 2. The events of every agent judged, together: each task index and the global one written once.
  await recordEvents(
    deps,
    batches.flatMap((b) => b.takeEvents()),
  );
  // 3. Then per agent: statuses, then finished tasks.
  const flushed = await Promise.allSettled(batches.map((b) => b.flush()));
  const failed = [...judged, ...flushed].find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return counts;
}

async function recordEvents(deps: ResultDeps, events: FlukeEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (deps.events.recordMany) await deps.events.recordMany(events);
  else for (const event of events) await deps.events.record(event);
}

type Found = { record: InstructionRecord; pending: string[] };

/**
 * One agent's share of a batch: ResultDeps that read through a per-batch cache and defer the
 * status writes and finished tasks to flush(). Everything else (episodes, alerts, retries) is
 * written at once, as before; flush() writes statuses before finishing tasks.
 */
class AgentBatch {
  readonly deps: ResultDeps;
  private readonly found = new Map<string, Promise<Found | null>>();
  private labels: Promise<Labels> | null = null;
  private snapshot: ReturnType<StatusStore['snapshot']> | null = null;
  private readonly statusOut = new Map<string, TaskStatus>();
  private readonly finished = new Map<string, Array<{ task: string; outcome: string }>>();
  private readonly completed = new Set<string>();
  private readonly events: FlukeEvent[] = [];

  constructor(
    private readonly agent: string,
    private readonly base: ResultDeps,
  ) {
    // Cached and deferred for this agent only; a result naming another agent's instruction goes
    // straight through, as the single-message handler would write it.
    const mine = (a: string) => a === agent;
    const statuses: StatusStore = {
      ...base.statuses,
      setStatus: async (a, status) => {
        if (!mine(a)) return base.statuses.setStatus(a, status);
        this.statusOut.set(status.task, status);
        (await this.snap()).statuses.set(status.task, status);
      },
      getStatus: async (a, task) =>
        mine(a) ? ((await this.snap()).statuses.get(task) ?? null) : base.statuses.getStatus(a, task),
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
      setStatuses: base.statuses.setStatuses.bind(base.statuses),
      snapshot: base.statuses.snapshot.bind(base.statuses),
      listStatuses: base.statuses.listStatuses.bind(base.statuses),
      listProblems: base.statuses.listProblems.bind(base.statuses),
      forgetTasks: base.statuses.forgetTasks.bind(base.statuses),
      close: async () => {},
    };
    this.deps = {
      ...base,
      statuses,
      labelsOf: (a) => {
        if (a !== agent) return base.labelsOf(a);
        this.labels ??= base.labelsOf(a);
        return this.labels;
      },
      events: {
        // Written together by flush(), before any status.
        record: async (event) => {
          this.events.push(event);
          return true;
        },
      },
      instructions: {
        get: (id) => {
          let f = this.found.get(id);
          if (!f) {
            f = base.instructions.get(id);
            this.found.set(id, f);
          }
          return f;
        },
        finishTask: async (id, task, outcome) => {
          const list = this.finished.get(id) ?? [];
          list.push({ task, outcome });
          this.finished.set(id, list);
          const found = await this.deps.instructions.get(id);
          if (!found) return 0;
          found.pending = found.pending.filter((t) => t !== task);
          return found.pending.length;
        },
        complete: async (id) => {
          this.completed.add(id);
          // Later messages of this batch see what a re-read would: the record is done.
          this.found.set(id, Promise.resolve(null));
        },
      },
    };
  }

  private snap(): ReturnType<StatusStore['snapshot']> {
    this.snapshot ??= this.base.statuses.snapshot(this.agent);
    return this.snapshot;
  }

  /** The events to record before flush(), handed over once. */
  takeEvents(): FlukeEvent[] {
    return this.events.splice(0);
  }

  async flush(): Promise<void> {
    await recordEvents(this.base, this.takeEvents());
    if (this.statusOut.size > 0)
      await this.base.statuses.setStatuses(this.agent, [...this.statusOut.values()]);
    await Promise.all(
      [...new Set([...this.finished.keys(), ...this.completed])].map(async (id) => {
        const done = this.finished.get(id) ?? [];
        const left = done.length > 0 ? await finishMany(this.base, id, done) : -1;
        if (left === 0 || this.completed.has(id)) await this.base.instructions.complete(id);
      }),
    );
  }
}

async function finishMany(
  deps: ResultDeps,
  id: string,
  done: Array<{ task: string; outcome: string }>,
): Promise<number> {
  if (deps.instructions.finishTasks) return deps.instructions.finishTasks(id, done);
  let left = 0;
  for (const d of done) left = await deps.instructions.finishTask(id, d.task, d.outcome);
  return left;
}
