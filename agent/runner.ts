/**
 * Accepts run instructions and executes them: one receipt per instruction, tasks of one instruction
 * one after another (steps on one host often depend on earlier tasks' effects, and parallel
 * applies would fight over package managers and services), separate instructions side by side.
 * Remembers accepted instruction ids (bounded) so none runs twice, and keeps every task it has
 * accepted marked busy until that task's execution ends, so a task never runs twice at once.
 */
import { randomUUID } from 'node:crypto';
import { coerceError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type {
  AgentResult,
  CancelMessage,
  InstructionReceiptMessage,
  OutputMessage,
  RunMessage,
} from '../shared/protocol.js';
import { admit, receiptOf } from './admission.js';
import { executeTask, type TaskDeps } from './execute-task.js';
import type { Executors } from './executors/executor.js';
import { RecentIds } from './recent-ids.js';

export interface RunnerOptions {
  executors: Executors;
  commandTimeoutMs: number;
  logger: Logger;
  /** Receipts: sent if connected; the gateway re-delivers an instruction it got no receipt for. */
  sendReceipt(message: InstructionReceiptMessage): void;
  /** Live output: best effort. */
  sendOutput(message: OutputMessage): void;
  /** Results: must be kept until acknowledged (the caller puts them in the outbox). */
  emitResult(result: AgentResult): void;
  /** How many accepted instruction ids to remember. */
  rememberInstructions?: number;
  maxOutputLinesPerStep?: number;
  tailBytes?: number;
  newId?: () => string;
  now?: () => number;
}

interface RunningInstruction {
  executions: Map<string, AbortController>;
  done: Promise<void>;
}

export class Runner {
  private readonly seen: RecentIds;
  /** task name → instruction id holding it. */
  private readonly busy = new Map<string, string>();
  private readonly running = new Map<string, RunningInstruction>();
  private accepting = true;
  private readonly deps: TaskDeps;

  constructor(private readonly opts: RunnerOptions) {
    this.seen = new RecentIds(opts.rememberInstructions ?? 10_000);
    this.deps = {
      executors: opts.executors,
      commandTimeoutMs: opts.commandTimeoutMs,
      logger: opts.logger,
      emitResult: (r) => this.safely('emitResult', () => opts.emitResult(r)),
      sendOutput: (m) => this.safely('sendOutput', () => opts.sendOutput(m)),
      newId: opts.newId ?? randomUUID,
      now: opts.now ?? Date.now,
      maxOutputLinesPerStep: opts.maxOutputLinesPerStep ?? 2000,
      tailBytes: opts.tailBytes ?? 4096,
    };
  }

  /** Handles a run instruction; returns once the receipt is sent (execution continues). */
  handleRun(run: RunMessage): void {
    const log = this.opts.logger.child({ instruction_id: run.instruction_id });
    const decision = admit(run, {
      accepting: this.accepting,
      seen: (id) => this.seen.has(id),
      busyWith: (task) => this.busy.get(task),
    });
    this.safely('sendReceipt', () => this.opts.sendReceipt(receiptOf(run.instruction_id, decision)));
    if (!decision.accepted) {
      // Routine: the server re-sends busy tasks later and ignores duplicates.
      log.info({ reason: decision.reason }, 'instruction refused');
      return;
    }
    this.seen.add(run.instruction_id);
    log.info(
      { tasks: run.tasks.length, trigger: run.trigger, revision: run.revision },
      'instruction accepted',
    );

    const executions = new Map<string, AbortController>();
    for (const task of run.tasks) {
      executions.set(task.execution_id, new AbortController());
      this.busy.set(task.task, run.instruction_id);
    }
    const done = (async () => {
      for (const task of run.tasks) {
        const controller = executions.get(task.execution_id)!;
        try {
          await executeTask(run.instruction_id, task, controller.signal, this.deps);
        } catch (err) {
          // executeTask handles command failures itself; reaching here is a bug, but it must not
          // leave the task marked busy forever or take the agent down.
          log.error({ err: coerceError(err), task: task.task }, 'task execution crashed');
        } finally {
          this.busy.delete(task.task);
        }
      }
    })().finally(() => this.running.delete(run.instruction_id));
    this.running.set(run.instruction_id, { executions, done });
  }

  /** Kills running commands of the instruction (or one execution); steps not yet run are skipped. */
  cancel(msg: Pick<CancelMessage, 'instruction_id' | 'execution_id' | 'reason'>): boolean {
    const instruction = this.running.get(msg.instruction_id);
    if (!instruction) {
      this.opts.logger.info(
        { instruction_id: msg.instruction_id },
        'cancel for an instruction that is not running',
      );
      return false;
    }
    const reason = msg.reason || 'cancelled by the server';
    for (const [id, controller] of instruction.executions) {
      if (msg.execution_id === null || msg.execution_id === id) controller.abort(reason);
    }
    this.opts.logger.info(
      { instruction_id: msg.instruction_id, execution_id: msg.execution_id, reason },
      'cancel',
    );
    return true;
  }

  /** Instruction ids executing now (sent with register and heartbeats). */
  runningInstructions(): string[] {
    return [...this.running.keys()];
  }

  /** Stop accepting, cancel everything running and wait until every task reported its result. */
  async shutdown(reason = 'agent shutting down'): Promise<void> {
    this.accepting = false;
    const all = [...this.running.entries()];
    for (const [id] of all) this.cancel({ instruction_id: id, execution_id: null, reason });
    await Promise.all(all.map(([, r]) => r.done));
  }

  /** Resolves when nothing is running (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.done));
  }

  // A broken sink (closed socket, full outbox) must never stop a task half-way.
  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.logger.error({ err: coerceError(err), what }, 'sending from the runner failed');
    }
  }
}
