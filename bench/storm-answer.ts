/**
 * What a simulated agent of bench/storm.ts sends for a `run`, as the real agent would for instant
 * steps: a receipt (a refusal `duplicate` for an instruction id it already ran), then per task a
 * check_result per drifted step when an apply follows, a step_result per step but the last, and a
 * task_result. A task drifted by the storm is applied once and is satisfied from then on. Also
 * the counters a simulator process reports (`stats`).
 */
import { type Admission, receiptOf } from '../agent/admission.js';
import type { AgentResult, RunMessage } from '../shared/protocol.js';
import { answerTask, taskState } from './sim-answer.js';

let seq = 0;
const nonce = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const nextId = () => `st${nonce}-${(seq++).toString(36)}`;

export interface AnswerSinks {
  receipt(text: string): void;
  result(result: AgentResult): void;
}

/** Answers `run`; returns the tasks it applied (removed from `drifted`). */
export function answerRun(
  run: RunMessage,
  repeat: boolean,
  drifted: Set<string>,
  out: AnswerSinks,
): string[] {
  const decision: Admission = repeat
    ? { accepted: false, code: 'duplicate', reason: 'instruction already ran' }
    : { accepted: true };
  out.receipt(JSON.stringify(receiptOf(run.instruction_id, decision)));
  if (repeat) return [];
  const applied: string[] = [];
  const at = new Date().toISOString();
  for (const task of run.tasks) {
    const state = taskState(drifted.has(task.task), task.mode);
    if (state === 'applied') {
      drifted.delete(task.task);
      applied.push(task.task);
    }
    answerTask(run, task, state, { at, nextId, keep: (r) => out.result(r) });
  }
  return applied;
}

export interface StormCounters {
  phase: string;
  startedAt: number;
  registrations: number;
  byGateway: Record<string, number>;
  firstRegisteredAt: number | null;
  lastRegisteredAt: number | null;
  /** Agents registered since the storm began, and of those, checked (a `run` on the new session). */
  agentsRegistered: number;
  agentsChecked: number;
  lastCheckedAt: number | null;
  runs: number;
  duplicates: number;
  doubleApplies: number;
  applies: number;
  results: number;
  acked: number;
  resent: number;
  closes: number;
  /** Close codes seen by the agents (1006: the socket dropped; 1013: try again later). */
  closeCodes: Record<string, number>;
  refusedUpgrades: Record<string, number>;
  refusals: number;
}

export function counters(phase: string): StormCounters {
  return {
    phase,
    startedAt: Date.now(),
    registrations: 0,
    byGateway: {},
    firstRegisteredAt: null,
    lastRegisteredAt: null,
    agentsRegistered: 0,
    agentsChecked: 0,
    lastCheckedAt: null,
    runs: 0,
    duplicates: 0,
    doubleApplies: 0,
    applies: 0,
    results: 0,
    acked: 0,
    resent: 0,
    closes: 0,
    closeCodes: {},
    refusedUpgrades: {},
    refusals: 0,
  };
}
