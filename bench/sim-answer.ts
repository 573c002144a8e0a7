/**
 * How the benches' simulated agents (reconcile-sims.ts, storm-answer.ts, recovery-answer.ts) answer
 * a `run` of instant steps, as agent/execute-task.ts would: per task a check_result per drifted
 * step when an apply follows, a step_result as the next step starts (none for the last: the
 * task_result carries it), and a task_result. Which (agent, task) pairs a phase drifts is a stable
 * hash, so every execution of a pair in one phase sees the same host.
 */
import type { AgentResult, RunMessage, StepResult } from '../shared/protocol.js';

/** 32-bit FNV-1a. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Whether phase `salt` drifts `agent`'s `task`: a `drift` fraction of the pairs, stably. */
export function isDrifted(salt: string, drift: number, agent: string, task: string): boolean {
  return drift > 0 && fnv1a(`${salt}|${agent}|${task}`) / 2 ** 32 < drift;
}

/** How one task of instant steps ends. */
export type TaskState = 'satisfied' | 'drifted' | 'applied';

/** A drifted task is applied when the run says apply, else reported drifted. */
export function taskState(drifted: boolean, mode: 'check' | 'apply'): TaskState {
  if (!drifted) return 'satisfied';
  return mode === 'apply' ? 'applied' : 'drifted';
}

/** The results of one task of `run` that ends in `state`, handed to `keep` in the agent's order. */
export function answerTask(
  run: RunMessage,
  task: RunMessage['tasks'][number],
  state: TaskState,
  o: { at: string; nextId: () => string; keep: (r: AgentResult) => void },
): void {
  const applied = state === 'applied';
  const base = { instruction_id: run.instruction_id, execution_id: task.execution_id, task: task.task };
  const steps: StepResult[] = task.steps.map((s) => ({
    step: s.name,
    type: s.type,
    outcome: state,
    exit_code: state === 'drifted' ? 1 : 0,
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
    outcome: state,
    started_at: o.at,
    finished_at: o.at,
    duration_ms: 0,
    steps,
  });
}
