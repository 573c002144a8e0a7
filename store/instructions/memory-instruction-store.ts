/**
 * The in-process twin of RedisInstructionStore: the same contract (test/store-instructions.contract.ts),
 * for unit tests and single-process use. TTLs are modelled as marks: `complete` records the id in
 * `completed`, and `expire` does what the end of a TTL does.
 */
import {
  type FoundInstruction,
  type InstructionRecord,
  type InstructionStore,
  type Settle,
  settleOne,
} from './instruction-store.js';

interface Entry {
  meta: string;
  /** Task → "pending" | outcome; like the Redis hash, it may hold tasks the record does not list. */
  fields: Map<string, string>;
}

export class MemoryInstructionStore implements InstructionStore {
  private readonly records = new Map<string, Entry>();
  /** Instruction ids completed, in call order (Redis: a short TTL). */
  readonly completed: string[] = [];

  async save(record: InstructionRecord): Promise<void> {
    // Like HSETNX: saving again (a re-run job) never resets what results already finished.
    const existing = this.records.get(record.instruction_id);
    const entry = existing ?? { meta: JSON.stringify(record), fields: new Map<string, string>() };
    for (const t of record.tasks) if (!entry.fields.has(t.task)) entry.fields.set(t.task, 'pending');
    this.records.set(record.instruction_id, entry);
  }

  async get(instructionId: string): Promise<FoundInstruction | null> {
    const entry = this.records.get(instructionId);
    if (!entry) return null;
    const record = JSON.parse(entry.meta) as InstructionRecord;
    const pending: string[] = [];
    const outcomes: Record<string, string> = {};
    for (const t of record.tasks) {
      const v = entry.fields.get(t.task);
      if (v === 'pending') pending.push(t.task);
      else if (v !== undefined) outcomes[t.task] = v;
    }
    return { record, pending, outcomes };
  }

  getMany(instructionIds: readonly string[]): Promise<Array<FoundInstruction | null>> {
    return Promise.all(instructionIds.map((id) => this.get(id)));
  }

  async finishTask(instructionId: string, task: string, outcome: string): Promise<number> {
    return this.finish(instructionId, [{ task, outcome }]);
  }

  settleTasks(
    instructionId: string,
    done: ReadonlyArray<{ task: string; outcome: string }>,
    complete = false,
  ): Promise<number> {
    return settleOne(this, instructionId, done, complete);
  }

  async settleMany(settles: ReadonlyArray<Settle>): Promise<PromiseSettledResult<number>[]> {
    return settles.map(({ instruction_id, done, complete }) => {
      const left = this.finish(instruction_id, done);
      if (this.records.has(instruction_id) && (left === 0 || complete)) this.completed.push(instruction_id);
      return { status: 'fulfilled', value: left };
    });
  }

  async complete(instructionId: string): Promise<void> {
    this.completed.push(instructionId);
  }

  /** What a task's field says (`pending` or its final outcome), for assertions. */
  taskState(instructionId: string, task: string): string | undefined {
    return this.records.get(instructionId)?.fields.get(task);
  }

  /** What the TTL ending does. */
  expire(instructionId: string): void {
    this.records.delete(instructionId);
  }

  /** Later entries win; a record that is gone stays gone (0 left). */
  private finish(instructionId: string, done: ReadonlyArray<{ task: string; outcome: string }>): number {
    const entry = this.records.get(instructionId);
    if (!entry) return 0;
    for (const d of done) entry.fields.set(d.task, d.outcome);
    let left = 0;
    for (const v of entry.fields.values()) if (v === 'pending') left++;
    return left;
  }
}
