/**
 * What a simulated agent of bench/storm.ts sends for a `run`, as the real agent would for instant
 * steps: a receipt (a refusal `duplicate` for an instruction id it already ran), then per task a
 * check_result per drifted step when an apply follows, a step_result per step but the last, and a
 * task_result. A task drifted by the storm is applied once and is satisfied from then on. Also
 * the counters a simulator process reports (`stats`).
 */
import type { AgentResult, RunMessage, StepResult } from '../shared/protocol.js';

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
  out.receipt(
    JSON.stringify({
      type: 'instruction_receipt',
      instruction_id: run.instruction_id,
      accepted: !repeat,
      reason: repeat ? 'instruction already ran' : null,
      ...(repeat ? { code: 'duplicate' } : {}),
    }),
  );
  if (repeat) return [];
  const applied: string[] = [];
  const at = new Date().toISOString();
  for (const task of run.tasks) {
    const apply = drifted.has(task.task) && task.mode === 'apply';
    const isDrifted = drifted.has(task.task);
    if (apply) {
      drifted.delete(task.task);
      applied.push(task.task);
    }
    const outcome = apply ? 'applied' : isDrifted ? 'drifted' : 'satisfied';
    const base = { instruction_id: run.instruction_id, execution_id: task.execution_id, task: task.task };
    const steps: StepResult[] = task.steps.map((s) => ({
      step: s.name,
      type: s.type,
      outcome,
      exit_code: isDrifted && !apply ? 1 : 0,
      apply_exit_code: apply ? 0 : null,
      duration_ms: 0,
      output_tail: '',
      error: null,
    }));
    steps.forEach((step, i) => {
      if (apply) {
        out.result({
          type: 'check_result',
          result_id: nextId(),
          ...base,
          step: step.step,
          satisfied: false,
          exit_code: 1,
          duration_ms: 0,
          output_tail: '',
        });
      }
      if (i < steps.length - 1)
        out.result({ type: 'step_result', result_id: nextId(), ...base, result: step });
    });
    out.result({
      type: 'task_result',
      result_id: nextId(),
      ...base,
      mode: task.mode,
      outcome,
      started_at: at,
      finished_at: at,
      duration_ms: 0,
      steps,
    });
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

/** 32-bit FNV-1a: which (agent, task) pairs the storm drifts, stably. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
