/**
 * The instruction store, metered: an instruction's reconcile cycle ends when its last task is
 * accounted for (`complete`), and every finished task has an outcome. Both are known here without
 * touching the handlers. `get` always runs before `complete` in the same job (the handler reads
 * the record to judge), so the dispatch time is remembered from it for a short while.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Keys } from '../shared/keys.js';
import type { MetricsSink } from '../shared/metrics.js';
import { type InstructionRecord, InstructionStore } from './instruction-store.js';

/** Records read but not completed yet, per process; oldest dropped first. */
const MAX_REMEMBERED = 20_000;

export class MeteredInstructionStore extends InstructionStore {
  private readonly started = new Map<string, { at: number; trigger: string }>();

  constructor(
    redis: Redis | Cluster,
    keys: Keys,
    private readonly metrics: MetricsSink,
  ) {
    super(redis as Redis, keys);
  }

  override async get(instructionId: string): ReturnType<InstructionStore['get']> {
    const found = await super.get(instructionId);
    if (found && found.pending.length > 0) this.remember(found.record);
    return found;
  }

  override async finishTask(instructionId: string, task: string, outcome: string): Promise<number> {
    const left = await super.finishTask(instructionId, task, outcome);
    this.metrics.inc('taskResults', { outcome });
    return left;
  }

  override async finishTasks(
    instructionId: string,
    done: Array<{ task: string; outcome: string }>,
  ): Promise<number> {
    const left = await super.finishTasks(instructionId, done);
    for (const d of done) this.metrics.inc('taskResults', { outcome: d.outcome });
    return left;
  }

  override async complete(instructionId: string): Promise<void> {
    await super.complete(instructionId);
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
