/**
 * What a simulated agent sends for one accepted `run` of instant steps (as agent/execute-task.ts
 * would): per task a check_result per drifted step when an apply follows, a step_result per step
 * but the last, and a task_result. Which (agent, task) pairs are drifted is a stable hash of the
 * phase, the agent and the task, so every execution of a pair in one phase sees the same host.
 */
import type { AgentResult, RunMessage, StepResult } from '../shared/protocol.js';
import type { Phase } from './recovery-agent.js';

/** 32-bit FNV-1a. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function isDrifted(phase: Pick<Phase, 'name' | 'drift'>, agent: string, task: string): boolean {
  return phase.drift > 0 && fnv1a(`${phase.name}|${agent}|${task}`) / 2 ** 32 < phase.drift;
}

export interface Executed {
  task: string;
  executionId: string;
  /** An apply ran (drifted pair, mode apply). */
  applied: boolean;
}

export function answerRun(
  run: RunMessage,
  o: { agent: string; phase: Phase; nextId: () => string; keep: (r: AgentResult) => void },
): Executed[] {
  const at = new Date().toISOString();
  const executed: Executed[] = [];
  for (const task of run.tasks) {
    const drifted = isDrifted(o.phase, o.agent, task.task);
    const applied = drifted && task.mode === 'apply';
    const outcome = applied ? 'applied' : drifted ? 'drifted' : 'satisfied';
    const base = { instruction_id: run.instruction_id, execution_id: task.execution_id, task: task.task };
    const steps: StepResult[] = task.steps.map((s) => ({
      step: s.name,
      type: s.type,
      outcome,
      exit_code: drifted && !applied ? 1 : 0,
      apply_exit_code: applied ? 0 : null,
      duration_ms: 0,
      output_tail: '',
      error: null,
    }));
    steps.forEach((step, i) => {
      if (applied) {
        o.keep({
          type: 'check_result',
          result_id: o.nextId(),
          ...base,
          step: step.step,
          satisfied: false,
          exit_code: 1,
          duration_ms: 0,
          output_tail: '',
        });
      }
      if (i < steps.length - 1) o.keep({ type: 'step_result', result_id: o.nextId(), ...base, result: step });
    });
    o.keep({
      type: 'task_result',
      result_id: o.nextId(),
      ...base,
      mode: task.mode,
      outcome,
      started_at: at,
      finished_at: at,
      duration_ms: 0,
      steps,
    });
    executed.push({ task: task.task, executionId: task.execution_id, applied });
  }
  return executed;
}
