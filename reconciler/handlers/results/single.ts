/**
 * Results from agents (through the gateways' `results` queue), one message at a time, and the
 * timeouts of instructions whose deadline passed: read what the rulebook needs, ask it
 * (shared/result-rules.ts), apply its effects. At-least-once safe: event ids and alert ids are
 * derived from the execution, alerts are enqueued (deduplicated by job id) before being claimed,
 * and the status is written last.
 */

import type { ResultJob } from '../../../shared/jobs/payloads.js';
import {
  type AgentResultMessage,
  type Decision,
  decide,
  type Facts,
  judgedTask,
  NEED_LABELS,
  type PlannedRecord,
  timeoutRule,
  timeoutSince,
  undeliverableRule,
} from '../../../shared/result-rules.js';
import { applyEffects } from './apply.js';
import type { MessageDeps } from './deps.js';

type ResultsBatch = Extract<ResultJob, { kind: 'results' }>;

function factsAt(deps: MessageDeps): Facts {
  const now = (deps.now ?? (() => new Date()))();
  return { previous: null, episode: null, labels: null, now, nowIso: now.toISOString() };
}

/** One message, or an undeliverable instruction. */
export async function messageHandler(
  job: Exclude<ResultJob, ResultsBatch>,
  deps: MessageDeps,
): Promise<string> {
  const facts = factsAt(deps);
  const instructionId = job.kind === 'undeliverable' ? job.instruction_id : job.message.instruction_id;
  const found = await deps.instructions.get(instructionId);
  if (job.kind === 'undeliverable') {
    if (!found) return 'unknown_instruction';
    return settle(deps, found.record, facts, () => undeliverableRule(found, job.reason, facts));
  }
  if (found && found.record.agent !== job.agent) return foreignInstruction(deps, job.agent, found.record);
  const message: AgentResultMessage = job.message;
  const task = found ? judgedTask(message, found.record) : null;
  if (found && task !== null) {
    [facts.previous, facts.episode] = await Promise.all([
      deps.statuses.getStatus(found.record.agent, task),
      deps.statuses.getEpisode(found.record.agent, task),
    ]);
  }
  return settle(deps, found?.record ?? null, facts, () => decide(message, found, facts));
}

/**
 * A message about an instruction issued to another agent than the one that sent it (the
 * gateways refuse these; this is the second check): dropped, nothing written, logged and counted
 * (fluke_results_dropped_total).
 */
export function foreignInstruction(deps: MessageDeps, sender: string, record: PlannedRecord): string {
  deps.logger.warn(
    { agent: sender, instruction_agent: record.agent, instruction_id: record.instruction_id },
    'dropped a result for an instruction issued to another agent',
  );
  deps.metrics?.inc('resultsDropped', { reason: FOREIGN_INSTRUCTION });
  return FOREIGN_INSTRUCTION;
}

/** The outcome (counted in the results job's return value) of a dropped foreign message. */
export const FOREIGN_INSTRUCTION = 'foreign_instruction';

/** Asks the rules (again with the labels, if they need them) and applies the answer. */
async function settle(
  deps: MessageDeps,
  record: PlannedRecord | null,
  facts: Facts,
  rule: () => Decision,
): Promise<string> {
  let decision = rule();
  if (decision === NEED_LABELS && record) {
    facts.labels = await deps.labelsOf(record.agent);
    decision = rule();
  }
  if (decision === NEED_LABELS) throw new Error('the result rules asked for labels twice');
  if (typeof decision === 'string') return decision;
  await applyEffects(deps, decision);
  return decision.outcome;
}

/** The deadline passed: every pending task of the instruction becomes a `timeout`. */
export async function timeOutTasks(
  deps: MessageDeps,
  record: PlannedRecord & { session_id?: string },
  tasks: string[],
  waitedMs: number,
): Promise<void> {
  const facts = factsAt(deps);
  const since = timeoutSince(record, (await deps.sessionOf?.(record.agent)) ?? null);
  for (const planned of record.tasks.filter((t) => tasks.includes(t.task))) {
    [facts.previous, facts.episode] = await Promise.all([
      deps.statuses.getStatus(record.agent, planned.task),
      deps.statuses.getEpisode(record.agent, planned.task),
    ]);
    await settle(deps, record, facts, () => timeoutRule(record, planned, waitedMs, facts, since));
  }
}
