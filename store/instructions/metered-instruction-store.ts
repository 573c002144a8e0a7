/**
 * The instruction store, metered: an instruction's reconcile cycle ends when its last task is
 * accounted for (`complete`, or `settleMany` completing it), and every finished task has an
 * outcome. Both are known here without touching the handlers. `get` always runs before
 * `complete` in the same job (the handler reads the record to judge), so the dispatch time is
 * remembered from it for a short while.
 */
import type { MetricsSink } from '../../shared/metrics.js';
import {
  type FoundInstruction,
  type InstructionRecord,
  type InstructionStore,
  type Settle,
  settleOne,
} from './instruction-store.js';

/** Records read but not completed yet, per process; oldest dropped first. */
const MAX_REMEMBERED = 20_000;

export interface MeteredInstructionStoreOptions {
  /** The store that keeps the records (any implementation of the port). */
  store: InstructionStore;
  metrics: MetricsSink;
}

/** Wraps any instruction store; what it meters never changes what the inner store does. */
export class MeteredInstructionStore implements InstructionStore {
  private readonly started = new Map<string, { at: number; trigger: string }>();
  private readonly inner: InstructionStore;
  private readonly metrics: MetricsSink;

  constructor({ store, metrics }: MeteredInstructionStoreOptions) {
    this.inner = store;
    this.metrics = metrics;
  }

  save(record: InstructionRecord): Promise<void> {
    return this.inner.save(record);
  }

  async get(instructionId: string): Promise<FoundInstruction | null> {
    const found = await this.inner.get(instructionId);
    if (found && found.pending.length > 0) this.remember(found.record);
    return found;
  }

  async getMany(instructionIds: readonly string[]): Promise<Array<FoundInstruction | null>> {
    const found = await this.inner.getMany(instructionIds);
    for (const f of found) if (f && f.pending.length > 0) this.remember(f.record);
    return found;
  }

  async finishTask(instructionId: string, task: string, outcome: string): Promise<number> {
    const left = await this.inner.finishTask(instructionId, task, outcome);
    this.metrics.inc('taskResults', { outcome });
    return left;
  }

  settleTasks(
    instructionId: string,
    done: ReadonlyArray<{ task: string; outcome: string }>,
    complete = false,
  ): Promise<number> {
    return settleOne(this, instructionId, done, complete);
  }

  async settleMany(settles: ReadonlyArray<Settle>): Promise<PromiseSettledResult<number>[]> {
    const results = await this.inner.settleMany(settles);
    this.settled(
      settles,
      results.map((r) => (r.status === 'fulfilled' ? r.value : null)),
    );
    return results;
  }

  /** Counts the outcomes of what was settled, and observes what it completed (as complete()). */
  private settled(settles: ReadonlyArray<Settle>, left: ReadonlyArray<number | null>): void {
    // One increment per outcome: the same sums as one per task.
    const byOutcome = new Map<string, number>();
    settles.forEach((settle, i) => {
      const n = left[i];
      if (n === null || n === undefined) return;
      for (const d of settle.done) byOutcome.set(d.outcome, (byOutcome.get(d.outcome) ?? 0) + 1);
      if (n === 0 || settle.complete) this.completed(settle.instruction_id);
    });
    for (const [outcome, n] of byOutcome) this.metrics.inc('taskResults', { outcome }, n);
  }

  async complete(instructionId: string): Promise<void> {
    await this.inner.complete(instructionId);
    this.completed(instructionId);
  }

  private completed(instructionId: string): void {
    const start = this.started.get(instructionId);
    if (!start) return;
    this.started.delete(instructionId);
    this.metrics.observe('reconcileCycle', Math.max(0, Date.now() - start.at) / 1000, {
      trigger: start.trigger,
    });
  }

  private remember(record: InstructionRecord): void {
    const at = Date.parse(record.created_at);
    if (!Number.isFinite(at) || this.started.has(record.instruction_id)) return;
    if (this.started.size >= MAX_REMEMBERED) {
      const oldest = this.started.keys().next();
      if (!oldest.done) this.started.delete(oldest.value);
    }
    this.started.set(record.instruction_id, { at, trigger: record.trigger });
  }
}
