/**
 * Results from agents (through the gateways' `results` queue): record the event, judge the result
 * against the last status and the drift episode, enqueue alerts, update status and progress.
 * At-least-once safe: event ids and alert ids are derived from the execution, alerts are enqueued
 * (deduplicated by job id) before being claimed, and the status is written last.
 */
import type { Logger } from 'pino';
import type { Alert } from '../../shared/alerts.js';
import { type RunContext, taskRunEvent, timeoutEvent, undeliverableEvent } from '../../shared/events.js';
import { judge, type Observation } from '../../shared/judge.js';
import type { Labels, TaskOutcome } from '../../shared/types.js';
import type { EventStore } from '../event-store/event-store.js';
import type { InstructionRecord, InstructionStore } from '../instruction-store.js';
import type { ReconcileAgentJob, ResultJob } from '../jobs.js';
import type { RunStore } from '../run-store.js';
import type { StatusStore } from '../status-store/status-store.js';

export interface ResultDeps {
  instructions: Pick<InstructionStore, 'get' | 'finishTask' | 'complete'>;
  events: Pick<EventStore, 'record'>;
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
  labels: Labels,
  observation: Observation,
  now: Date,
): Promise<void> {
  const agent = record.agent;
  const [previous, episode] = await Promise.all([
    deps.statuses.getStatus(agent, planned.task),
    deps.statuses.getEpisode(agent, planned.task),
  ]);
  const verdict = judge({
    agent: { name: agent, labels },
    task: planned.task,
    policy: planned.policy,
    mode: planned.mode,
    revision: record.revision,
    now: now.toISOString(),
    previous,
    episode,
    observation,
  });
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
  const now = (deps.now ?? (() => new Date()))();
  const instructionId = job.kind === 'undeliverable' ? job.instruction_id : job.message.instruction_id;
  const found = await deps.instructions.get(instructionId);
  // Unknown: finished and removed already (a redelivered job) or expired. Nothing left to do.
  if (!found) return 'unknown_instruction';
  const { record, pending } = found;
  const labels = await deps.labelsOf(record.agent);

  if (job.kind === 'undeliverable') {
    for (const planned of record.tasks.filter((t) => pending.includes(t.task))) {
      const ctx = context(record, planned, labels, now);
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
            context(record, planned, labels, now),
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
      await deps.events.record(taskRunEvent(message, context(record, planned, labels, now)));
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
  const labels = await deps.labelsOf(record.agent);
  for (const planned of record.tasks.filter((t) => tasks.includes(t.task))) {
    await deps.events.record(
      timeoutEvent({ ...planned, waited_ms: waitedMs }, context(record, planned, labels, now)),
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
