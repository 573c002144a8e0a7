/**
 * Dispatched instructions waiting for results. One hash per instruction with a TTL; fields:
 * `meta` (JSON) and `t:<task>` → "pending" | the final outcome. Lets the deadline job turn silence
 * into `timeout` events and lets result handlers find the trigger, run and revision of a result.
 */
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';
import { anyNul, unpackReply } from '../redis/nul-packing.js';
import { canPipeline, type Executable, execAll, execSettled } from '../redis/pipeline.js';
import { FINISH_TASK, FINISH_TASKS, GET, SAVE, SETTLE_TASKS } from './instruction-scripts.js';
import {
  type FoundInstruction,
  type InstructionRecord,
  type InstructionStore,
  type InstructionTask,
  type Settle,
  settleOne,
} from './instruction-store.js';

/** How long a finished instruction stays readable for late or redelivered results. */
const DONE_TTL_S = 600;

/** Long enough for any run; the deadline job normally finishes the record much sooner. */
const TTL_S = 24 * 3600;

interface InstructionCommands {
  flukeSaveInstruction(key: string, ttlS: number, meta: string, ...fields: string[]): Promise<unknown>;
  flukeFinishTask(key: string, field: string, outcome: string): Promise<unknown>;
  flukeFinishTasks(key: string, ...fieldsAndOutcomes: string[]): Promise<unknown>;
  flukeSettleTasks(key: string, complete: string, doneTtlS: number, packed: string): Promise<unknown>;
  /** Pipelined only (getMany): plain get() stays an HGETALL. */
  flukeGetInstruction(key: string): Promise<unknown>;
}

/**
 * The commands, queued on an explicit pipeline: batches go out as one each (single commands on
 * a Cluster, store/redis/pipeline.ts).
 */
interface InstructionPipeline extends Executable {
  flukeGetInstruction(key: string): unknown;
  flukeSettleTasks(key: string, complete: string, doneTtlS: number, packed: string): unknown;
}

/** `t:<task>`, outcome, ... NUL-packed; null when empty or a task name holds a NUL. */
function packDone(done: ReadonlyArray<{ task: string; outcome: string }>): string | null {
  if (done.length === 0) return null;
  const args: string[] = [];
  for (const d of done) args.push(`t:${d.task}`, d.outcome);
  return anyNul(args) ? null : args.join('\0');
}

/**
 * The `t:<task>` values of a record's hash (flat field, value, ...). Small hashes keep insertion
 * order, which save() made meta then the tasks in order: each task is looked for there first,
 * and only a hash in another order pays for a map.
 */
function taskStates(flat: readonly string[]): (task: string, index: number) => string | undefined {
  let byField: Map<string, string> | null = null;
  return (task, index) => {
    const at = 2 + 2 * index;
    const field = flat[at];
    if (flat[0] === 'meta' && field !== undefined && isTaskField(field, task)) return flat[at + 1];
    if (!byField) {
      byField = new Map();
      for (let i = 0; i + 1 < flat.length; i += 2) byField.set(flat[i] as string, flat[i + 1] as string);
    }
    return byField.get(`t:${task}`);
  };
}

/** field === `t:${task}`, without building the string. */
function isTaskField(field: string, task: string): boolean {
  return field.length === task.length + 2 && field.startsWith('t:') && field.startsWith(task, 2);
}

export interface RedisInstructionStoreOptions {
  redis: RedisClient;
  keys: Keys;
}

export class RedisInstructionStore implements InstructionStore {
  private readonly redis: RedisClient & InstructionCommands;
  private readonly keys: Keys;

  constructor({ redis, keys }: RedisInstructionStoreOptions) {
    this.keys = keys;
    const r = redis as RedisClient & Partial<InstructionCommands>;
    // EVALSHA (falling back to EVAL after a script flush), defined once per client.
    if (typeof r.flukeFinishTask !== 'function') {
      redis.defineCommand('flukeFinishTask', { numberOfKeys: 1, lua: FINISH_TASK });
    }
    if (typeof r.flukeSaveInstruction !== 'function') {
      redis.defineCommand('flukeSaveInstruction', { numberOfKeys: 1, lua: SAVE });
    }
    if (typeof r.flukeFinishTasks !== 'function') {
      redis.defineCommand('flukeFinishTasks', { numberOfKeys: 1, lua: FINISH_TASKS });
    }
    if (typeof r.flukeSettleTasks !== 'function') {
      redis.defineCommand('flukeSettleTasks', { numberOfKeys: 1, lua: SETTLE_TASKS });
    }
    if (typeof r.flukeGetInstruction !== 'function') {
      redis.defineCommand('flukeGetInstruction', { numberOfKeys: 1, lua: GET });
    }
    this.redis = redis as RedisClient & InstructionCommands;
  }

  async save(record: InstructionRecord): Promise<void> {
    await this.redis.flukeSaveInstruction(
      this.keys.instruction(record.instruction_id),
      TTL_S,
      JSON.stringify(record),
      ...record.tasks.map((t) => `t:${t.task}`),
    );
  }

  async get(instructionId: string): Promise<FoundInstruction | null> {
    const key = this.keys.instruction(instructionId);
    return this.toFound(key, null, await this.redis.hgetall(key));
  }

  /**
   * get() of many instructions in one pipeline of a script that answers each record NUL-packed
   * (single reads on a Cluster), in order.
   */
  async getMany(instructionIds: readonly string[]): Promise<Array<FoundInstruction | null>> {
    if (instructionIds.length === 0) return [];
    if (!canPipeline(this.redis)) return Promise.all(instructionIds.map((id) => this.get(id)));
    const pipe = this.redis.pipeline() as unknown as InstructionPipeline;
    for (const id of instructionIds) pipe.flukeGetInstruction(this.keys.instruction(id));
    const replies = await execAll(pipe);
    const out: Array<FoundInstruction | null> = [];
    for (let i = 0; i < instructionIds.length; i++)
      out.push(await this.toFound(this.keys.instruction(instructionIds[i] as string), replies[i], null));
    return out;
  }

  /**
   * The record from the GET script's reply or from HGETALL's. A packed reply that does not unpack
   * (a value with a NUL in it, not one Fluke wrote) is read again plainly.
   */
  private async toFound(
    key: string,
    packed: unknown,
    hash: Record<string, string> | null,
  ): Promise<FoundInstruction | null> {
    // Field, value, field, value ...
    const flat =
      (hash ? null : unpackReply(packed)) ?? Object.entries(hash ?? (await this.redis.hgetall(key))).flat();
    let meta: string | undefined;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      if (flat[i] === 'meta') {
        meta = flat[i + 1];
        break;
      }
    }
    if (!meta) return null;
    const record = JSON.parse(meta) as InstructionRecord;
    const pending: string[] = [];
    /** Finished tasks → their outcome (`requeued` when a busy agent's task was put back). */
    const outcomes: Record<string, string> = {};
    const stateOf = taskStates(flat);
    for (let i = 0; i < record.tasks.length; i++) {
      const task = (record.tasks[i] as InstructionTask).task;
      const value = stateOf(task, i);
      if (value === 'pending') pending.push(task);
      else if (value !== undefined) outcomes[task] = value;
    }
    return { record, pending, outcomes };
  }

  /** Marks a task finished; returns how many tasks are still pending. Idempotent. */
  async finishTask(instructionId: string, task: string, outcome: string): Promise<number> {
    const key = this.keys.instruction(instructionId);
    // Only touch a record that still exists: a late duplicate must not resurrect it without a TTL.
    const left = await this.redis.flukeFinishTask(key, `t:${task}`, outcome);
    return Number(left);
  }

  settleTasks(
    instructionId: string,
    done: ReadonlyArray<{ task: string; outcome: string }>,
    complete = false,
  ): Promise<number> {
    return settleOne(this, instructionId, done, complete);
  }

  /**
   * Marks each instruction's `done` finished (later entries win), then completes the record if no
   * task is left pending, or anyway when `complete` is set; all in one pipeline (single commands
   * on a Cluster). Settled per instruction: how many tasks are still pending (0 for a record that
   * is gone, which is not recreated).
   */
  async settleMany(settles: ReadonlyArray<Settle>): Promise<PromiseSettledResult<number>[]> {
    const results: PromiseSettledResult<number>[] = new Array(settles.length);
    const single: Promise<void>[] = [];
    const pipe = canPipeline(this.redis) ? (this.redis.pipeline() as unknown as InstructionPipeline) : null;
    const sent: number[] = [];
    settles.forEach((settle, i) => {
      const packed = pipe ? packDone(settle.done) : null;
      if (!pipe || packed === null) {
        single.push(
          this.settleOne(settle).then(
            (value) => {
              results[i] = { status: 'fulfilled', value };
            },
            (reason: unknown) => {
              results[i] = { status: 'rejected', reason };
            },
          ),
        );
        return;
      }
      pipe.flukeSettleTasks(
        this.keys.instruction(settle.instruction_id),
        settle.complete ? '1' : '0',
        DONE_TTL_S,
        packed,
      );
      sent.push(i);
    });
    if (pipe && sent.length > 0) {
      const replies = await execSettled(pipe, sent.length);
      sent.forEach((i, j) => {
        const reply = replies[j] as PromiseSettledResult<unknown>;
        results[i] =
          reply.status === 'fulfilled' ? { status: 'fulfilled', value: Number(reply.value) } : reply;
      });
    }
    await Promise.all(single);
    return results;
  }

  /** One instruction's settle with single commands, (the metered store counts in settleMany). */
  private async settleOne({ instruction_id, done, complete }: Settle): Promise<number> {
    const key = this.keys.instruction(instruction_id);
    const packed = packDone(done);
    // Nothing to write, or a NUL in a task name: the plain way.
    if (packed === null) {
      const left =
        done.length === 0
          ? ((await this.get(instruction_id))?.pending.length ?? 0)
          : Number(
              await this.redis.flukeFinishTasks(key, ...done.flatMap((d) => [`t:${d.task}`, d.outcome])),
            );
      if (left === 0 || complete) await this.redis.expire(key, DONE_TTL_S);
      return left;
    }
    return Number(await this.redis.flukeSettleTasks(key, complete ? '1' : '0', DONE_TTL_S, packed));
  }

  /**
   * Every task is accounted for: keep the record a little longer so a late result (one that
   * arrives after its timeout was recorded) is still recorded, then let it expire.
   */
  async complete(instructionId: string): Promise<void> {
    await this.redis.expire(this.keys.instruction(instructionId), DONE_TTL_S);
  }
}
