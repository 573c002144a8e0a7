/**
 * A Runner wired to in-memory sinks, plus step builders and temp dirs, for the executor and runner
 * tests. Real executors, real commands: only the socket is replaced.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Executors } from '../../agent/executors/executor.js';
import { createExecutors, type ExecutorOptions } from '../../agent/executors/index.js';
import { Runner } from '../../agent/runner.js';
import type {
  AgentResult,
  CheckResultMessage,
  InstructionReceiptMessage,
  OutputMessage,
  RunTask,
  StepResultMessage,
  TaskResultMessage,
} from '../../shared/protocol.js';
import type { MiseStep, ShellStep, Step, SystemdStep } from '../../shared/types.js';

export const silentLogger = pino({ level: 'silent' });

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/** A fresh directory under the OS temp dir, removed when the test ends. */
export function tempDir(t: Teardown, prefix = 'fluke-agent-'): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function shell(
  name: string,
  check: string,
  command: string,
  extra: Partial<ShellStep> = {},
): ShellStep {
  return {
    type: 'shell',
    name,
    check,
    command,
    working_dir: null,
    run_as: null,
    env: {},
    on_failure: 'abort',
    ...extra,
  };
}

export function systemd(name: string, unit: string, extra: Partial<SystemdStep> = {}): SystemdStep {
  return { type: 'systemd', name, unit, state: 'running', enabled: true, ...extra };
}

export function mise(name: string, workingDir: string, extra: Partial<MiseStep> = {}): MiseStep {
  return {
    type: 'mise',
    name,
    working_dir: workingDir,
    check_task: 'check',
    apply_task: 'apply',
    git: null,
    ...extra,
  };
}

export function task(name: string, steps: Step[], mode: 'check' | 'apply' = 'apply'): RunTask {
  return { execution_id: `exec-${name}-${randomUUID()}`, task: name, mode, steps };
}

export interface HarnessOptions extends Partial<ExecutorOptions> {
  timeoutMs?: number;
  executors?: Executors;
  maxOutputLinesPerStep?: number;
}

export function createHarness(opts: HarnessOptions = {}) {
  const receipts: InstructionReceiptMessage[] = [];
  const outputs: OutputMessage[] = [];
  const results: AgentResult[] = [];
  // Waiters are re-evaluated whenever the runner emits something: no polling timers.
  const waiters = new Set<() => boolean>();
  const notify = (): void => {
    for (const w of waiters) if (w()) waiters.delete(w);
  };
  const until = <T>(find: () => T | undefined): Promise<T> => {
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      waiters.add(() => {
        const v = find();
        if (v === undefined) return false;
        resolve(v);
        return true;
      });
    });
  };
  const runner = new Runner({
    executors: opts.executors ?? createExecutors({ defaultShell: opts.defaultShell ?? '/bin/bash', ...opts }),
    commandTimeoutMs: opts.timeoutMs ?? 30_000,
    logger: silentLogger,
    sendReceipt: (m) => receipts.push(m),
    sendOutput: (m) => {
      outputs.push(m);
      notify();
    },
    emitResult: (r) => {
      results.push(r);
      notify();
    },
    maxOutputLinesPerStep: opts.maxOutputLinesPerStep,
  });

  const harness = {
    runner,
    receipts,
    outputs,
    results,
    /** Sends a run instruction; returns its receipt. */
    send(instructionId: string, tasks: RunTask[]): InstructionReceiptMessage {
      runner.handleRun({
        type: 'run',
        instruction_id: instructionId,
        revision: 'abc123',
        trigger: 'manual',
        tasks,
      });
      const receipt = receipts.at(-1);
      if (!receipt || receipt.instruction_id !== instructionId) throw new Error('no receipt sent');
      return receipt;
    },
    /** Runs one task to completion and returns its task result. */
    async runTask(t: RunTask): Promise<TaskResultMessage> {
      const receipt = harness.send(`instr-${randomUUID()}`, [t]);
      if (!receipt.accepted) throw new Error(`refused: ${receipt.reason}`);
      await runner.idle();
      return harness.taskResult(t.execution_id);
    },
    taskResult(executionId: string): TaskResultMessage {
      const r = results.find(
        (m): m is TaskResultMessage => m.type === 'task_result' && m.execution_id === executionId,
      );
      if (!r) throw new Error(`no task_result for ${executionId}`);
      return r;
    },
    stepResults(executionId: string): StepResultMessage[] {
      return results.filter(
        (m): m is StepResultMessage => m.type === 'step_result' && m.execution_id === executionId,
      );
    },
    checkResults(executionId: string): CheckResultMessage[] {
      return results.filter(
        (m): m is CheckResultMessage => m.type === 'check_result' && m.execution_id === executionId,
      );
    },
    /** Resolves with the first result matching `pred` (already emitted or the next one). */
    waitForResult(pred: (r: AgentResult) => boolean): Promise<AgentResult> {
      return until(() => results.find(pred));
    },
    /** Resolves with the first live output line matching `pred`. */
    waitForOutput(pred: (m: OutputMessage) => boolean): Promise<OutputMessage> {
      return until(() => outputs.find(pred));
    },
  };
  return harness;
}
