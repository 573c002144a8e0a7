/**
 * Pure decisions about what a step or task run came to. No I/O: the runner feeds in what each
 * command returned and sends what these functions decide.
 */
import type { RunMode, StepOutcome } from '../shared/types.js';
import type { ExecResult } from './executors/executor.js';

/** What happened to a check, judged alone. */
export type CheckVerdict = 'satisfied' | 'unsatisfied' | 'timeout' | 'failed';

export function judgeCheck(result: ExecResult): CheckVerdict {
  if (result.timedOut) return 'timeout';
  // An executor error (cannot spawn, bad unit name, missing mise task) is not drift: nothing was
  // actually checked, so it must not trigger an apply.
  if (result.error !== null) return 'failed';
  return result.exitCode === 0 ? 'satisfied' : 'unsatisfied';
}

/** What to do after the first check. */
export function afterCheck(verdict: CheckVerdict, mode: RunMode): { outcome: StepOutcome } | { apply: true } {
  switch (verdict) {
    case 'satisfied':
      return { outcome: 'satisfied' };
    case 'unsatisfied':
      return mode === 'apply' ? { apply: true } : { outcome: 'drifted' };
    case 'timeout':
      return { outcome: 'timeout' };
    case 'failed':
      return { outcome: 'failed' };
  }
}

/** What to do after the apply: a failed apply ends the step, a clean one is verified by a re-check. */
export function afterApply(result: ExecResult): { outcome: StepOutcome } | { recheck: true } {
  if (result.timedOut) return { outcome: 'timeout' };
  if (result.error !== null || result.exitCode !== 0) return { outcome: 'failed' };
  return { recheck: true };
}

/** The re-check after a clean apply: still failing means the user's check and apply disagree. */
export function afterRecheck(result: ExecResult): StepOutcome {
  switch (judgeCheck(result)) {
    case 'satisfied':
      return 'applied';
    case 'unsatisfied':
      return 'unconverged';
    case 'timeout':
      return 'timeout';
    case 'failed':
      return 'failed';
  }
}

/** Outcomes that stop a task whose step says `on_failure = "abort"`. Drift in check mode does not. */
export function stopsTask(outcome: StepOutcome): boolean {
  return outcome === 'failed' || outcome === 'timeout' || outcome === 'unconverged';
}

/**
 * Worst first. `skipped` ranks above `applied`/`satisfied` so a task cancelled part-way is never
 * reported as converged; it ranks below the failures because a skip is always caused by one of
 * them (or by a cancel, which marks the interrupted step `failed`).
 */
export const OUTCOME_SEVERITY: readonly StepOutcome[] = [
  'failed',
  'timeout',
  'unconverged',
  'drifted',
  'skipped',
  'applied',
  'satisfied',
];

/** The task outcome: the worst step outcome; a task with no steps is satisfied. */
export function worstOutcome(outcomes: readonly StepOutcome[]): StepOutcome {
  let worst: StepOutcome = 'satisfied';
  for (const o of outcomes) if (OUTCOME_SEVERITY.indexOf(o) < OUTCOME_SEVERITY.indexOf(worst)) worst = o;
  return worst;
}
