/**
 * Applying the rulebook's effects (shared/result-rules.ts) through MessageDeps, in the order
 * that makes every step safe to repeat (docs/events.md, "Applying a verdict"): events, episode
 * opened, each alert enqueued then claimed (the job id deduplicates: a crash in between cannot
 * lose it), episode closed, status last, then run progress and the finished task.
 */
import type { InstructionEffects, PlannedRecord, TaskEffects } from '../../../shared/result-rules.js';
import type { Labels } from '../../../shared/types.js';
import type { MessageDeps } from './deps.js';

export async function applyEffects(
  deps: MessageDeps,
  effects: TaskEffects | InstructionEffects,
): Promise<void> {
  if (effects.kind === 'task') return applyTask(deps, effects);
  return applyInstruction(deps, effects);
}

async function applyTask(deps: MessageDeps, effects: TaskEffects): Promise<void> {
  const { record, verdict, task } = effects;
  const agent = record.agent;
  if (effects.event) await deps.events.record(effects.event);
  if (verdict.ignored === null) {
    if (verdict.openEpisode) await deps.statuses.openEpisode(agent, verdict.openEpisode);
    for (const alert of verdict.alerts) {
      await deps.enqueueAlert(alert);
      await deps.statuses.markAlerted(agent, task, alert.episode_id, alert.payload.event);
    }
    if (verdict.closeEpisode) await deps.statuses.closeEpisode(agent, task, verdict.closeEpisode);
    if (verdict.status) await deps.statuses.setStatus(agent, verdict.status);
  }
  if (effects.finish !== null) await finish(deps, record, task, effects.finish);
}

async function applyInstruction(deps: MessageDeps, effects: InstructionEffects): Promise<void> {
  const { record, retry } = effects;
  if (retry) {
    const { delayMs, ...job } = retry;
    await deps.retryLater(job, delayMs);
  }
  if (effects.refused !== null) {
    deps.logger.warn(
      { agent: record.agent, instruction_id: record.instruction_id, reason: effects.refused },
      'instruction refused',
    );
  }
  for (const [i, task] of effects.tasks.entries()) {
    const event = effects.events[i];
    if (event) await deps.events.record(event);
    if (effects.progress) await finish(deps, record, task, effects.finish);
    else await deps.instructions.finishTask(record.instruction_id, task, effects.finish);
  }
  if (!effects.progress) await deps.instructions.complete(record.instruction_id);
}

async function finish(
  deps: MessageDeps,
  record: PlannedRecord,
  task: string,
  outcome: string,
): Promise<void> {
  if (record.run_id) await deps.runs.setOutcome(record.run_id, record.agent, task, outcome);
  const left = await deps.instructions.finishTask(record.instruction_id, task, outcome);
  if (left === 0) await deps.instructions.complete(record.instruction_id);
}

/** The agent's labels, read at most once and only if an event or alert needs them. */
export function lazyLabels(deps: MessageDeps, agent: string): () => Promise<Labels> {
  let labels: Promise<Labels> | null = null;
  return () => {
    labels ??= deps.labelsOf(agent);
    return labels;
  };
}
