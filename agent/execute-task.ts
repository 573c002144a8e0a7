/**
 * Runs one task of an instruction: for each step in order, check → (mode apply, check failed)
 * apply → re-check. A check that found drift is reported at once when an apply follows; a step
 * result goes out when the next step starts (the last step's travels in the task result); the
 * task result at the end. The decisions live in ./outcome.ts; this file does the I/O around them.
 */
import type { Logger } from '../shared/logger.js';
import type { AgentResult, OutputMessage, RunTask, StepResult } from '../shared/protocol.js';
import { maskValues, secretValues } from '../shared/redact.js';
import type { Step, StepOutcome } from '../shared/types.js';
import type { ExecContext, ExecResult, Executor, Executors } from './executors/executor.js';
import { afterApply, afterCheck, afterRecheck, judgeCheck, stopsTask, worstOutcome } from './outcome.js';
import { TailBuffer } from './tail-buffer.js';

type Phase = OutputMessage['phase'];

export interface TaskDeps {
  executors: Executors;
  commandTimeoutMs: number;
  logger: Logger;
  emitResult(result: AgentResult): void;
  sendOutput(message: OutputMessage): void;
  newId(): string;
  now(): number;
  /** Live output lines per step before the rest is only kept in the tail. */
  maxOutputLinesPerStep: number;
  /** Bytes of output kept per step for the result. */
  tailBytes: number;
}

export async function executeTask(
  instructionId: string,
  task: RunTask,
  signal: AbortSignal,
  deps: TaskDeps,
): Promise<void> {
  const base = { instruction_id: instructionId, execution_id: task.execution_id, task: task.task };
  const log = deps.logger.child({
    instruction_id: instructionId,
    execution_id: task.execution_id,
    task: task.task,
  });
  const startedAt = deps.now();
  const results: StepResult[] = [];
  let stopReason: string | null = null;

  // A step's result goes out when the next step starts: the last one's would leave together
  // with the task_result that carries it, and the reconciler takes step results as progress only.
  let finished: StepResult | null = null;
  for (const step of task.steps) {
    if (signal.aborted) stopReason ??= cancelReason(signal);
    if (stopReason !== null) {
      results.push(skipped(step, stopReason));
      continue;
    }
    if (finished)
      deps.emitResult({ type: 'step_result', result_id: deps.newId(), ...base, result: finished });
    const result = await executeStep(step, task, signal, deps, base);
    results.push(result);
    finished = result;
    if (signal.aborted) stopReason = cancelReason(signal);
    else if (stopsTask(result.outcome) && onFailure(step) === 'abort') {
      stopReason = `skipped: step ${step.name} ${result.outcome}`;
    }
  }

  const finishedAt = deps.now();
  const outcome = worstOutcome(results.map((r) => r.outcome));
  log.info({ outcome, duration_ms: finishedAt - startedAt }, 'task finished');
  deps.emitResult({
    type: 'task_result',
    result_id: deps.newId(),
    ...base,
    mode: task.mode,
    outcome,
    started_at: new Date(startedAt).toISOString(),
    finished_at: new Date(finishedAt).toISOString(),
    duration_ms: finishedAt - startedAt,
    // An abort or cancel before the first step yields all-skipped, which worstOutcome reports as is.
    steps: results,
  });
}

/** Steps other than shell always abort: a service or toolchain that failed leaves later steps meaningless. */
function onFailure(step: Step): 'abort' | 'continue' {
  return step.type === 'shell' ? step.on_failure : 'abort';
}

async function executeStep(
  step: Step,
  task: RunTask,
  signal: AbortSignal,
  deps: TaskDeps,
  base: { instruction_id: string; execution_id: string; task: string },
): Promise<StepResult> {
  const started = deps.now();
  const tail = new TailBuffer(deps.tailBytes);
  // Env values and sensitive fields never leave the host in output (docs/manifests.md).
  const secrets = secretValues(step);
  const mask = (text: string): string => maskValues(text, secrets);
  let lines = 0;
  const ctx = (phase: Phase): ExecContext => ({
    signal,
    timeoutMs: deps.commandTimeoutMs,
    logger: deps.logger,
    onLine(stream, line) {
      lines++;
      if (lines > deps.maxOutputLinesPerStep + 1) return;
      const capped = lines > deps.maxOutputLinesPerStep;
      deps.sendOutput({
        type: 'output',
        execution_id: task.execution_id,
        task: task.task,
        step: step.name,
        phase,
        stream: capped ? 'stderr' : stream,
        line: capped
          ? `[fluke] live output limit (${deps.maxOutputLinesPerStep} lines) reached; the result keeps the tail`
          : mask(line),
      });
    },
  });
  const run = async (phase: Phase, fn: (c: ExecContext) => Promise<ExecResult>): Promise<ExecResult> => {
    const r = await fn(ctx(phase));
    tail.push(`==> ${phase}${r.exitCode === null ? '' : ` (exit ${r.exitCode})`}\n${mask(r.output)}`);
    if (r.output !== '' && !r.output.endsWith('\n')) tail.push('\n');
    return r;
  };
  // The per-type executor map guarantees the step and executor types agree.
  const executor = deps.executors[step.type] as Executor<Step>;
  const result = (
    outcome: StepOutcome,
    last: ExecResult,
    apply: ExecResult | null,
    error: string | null,
  ): StepResult => ({
    step: step.name,
    type: step.type,
    outcome,
    exit_code: last.exitCode,
    apply_exit_code: apply?.exitCode ?? null,
    duration_ms: deps.now() - started,
    output_tail: tail.toString(),
    error: error === null ? null : mask(error),
  });

  const check = await run('check', (c) => executor.check(step, c));
  const next = afterCheck(judgeCheck(check), task.mode);
  if ('outcome' in next) return result(next.outcome, check, null, check.error);
  // Drift found and an apply follows: report the check now, so drift can be alerted before a
  // long apply ends. Otherwise the step's result says the same thing at once.
  deps.emitResult({
    type: 'check_result',
    result_id: deps.newId(),
    ...base,
    step: step.name,
    satisfied: false,
    exit_code: check.exitCode,
    duration_ms: deps.now() - started,
    output_tail: tail.toString(),
  });

  const apply = await run('apply', (c) => executor.apply(step, c));
  const afterA = afterApply(apply);
  if ('outcome' in afterA) {
    return result(afterA.outcome, apply, apply, apply.error ?? `apply exited with code ${apply.exitCode}`);
  }

  const recheck = await run('recheck', (c) => executor.check(step, c));
  const outcome = afterRecheck(recheck);
  const error = outcome === 'unconverged' ? 'apply exited 0 but the re-check still fails' : recheck.error;
  return result(outcome, recheck, apply, error);
}

function skipped(step: Step, reason: string): StepResult {
  return {
    step: step.name,
    type: step.type,
    outcome: 'skipped',
    exit_code: null,
    apply_exit_code: null,
    duration_ms: 0,
    output_tail: '',
    error: reason,
  };
}

function cancelReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  const why = r instanceof Error ? r.message : typeof r === 'string' ? r : 'cancelled';
  return `cancelled: ${why}`;
}
