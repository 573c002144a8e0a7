/**
 * What a simulated agent of bench/recovery.ts sends for one accepted `run` of instant steps
 * (sim-answer.ts): which (agent, task) pairs are drifted is a stable hash of the phase, the agent
 * and the task, so every execution of a pair in one phase sees the same host.
 */
import type { AgentResult, RunMessage } from '../shared/protocol.js';
import type { Phase } from './recovery-agent.js';
import { answerTask, isDrifted, taskState } from './sim-answer.js';

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
    const state = taskState(isDrifted(o.phase.name, o.phase.drift, o.agent, task.task), task.mode);
    answerTask(run, task, state, { at, nextId: o.nextId, keep: o.keep });
    executed.push({ task: task.task, executionId: task.execution_id, applied: state === 'applied' });
  }
  return executed;
}
