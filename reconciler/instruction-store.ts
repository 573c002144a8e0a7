/**
 * Dispatched instructions waiting for results. One hash per instruction with a TTL; fields:
 * `meta` (JSON) and `t:<task>` → "pending" | the final outcome. Lets the deadline job turn silence
 * into `timeout` events and lets result handlers find the trigger, run and revision of a result.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../shared/keys.js';
import type { PlannedTask } from '../shared/plan.js';
import type { Trigger } from './jobs.js';

export type InstructionTask = PlannedTask;

export interface InstructionRecord {
  instruction_id: string;
  agent: string;
  session_id: string;
  trigger: Trigger;
  run_id: string | null;
  revision: string;
  created_at: string;
  /** How often this reconcile was already put back because the agent was busy. */
  retry: number;
  tasks: InstructionTask[];
}

const FINISH_TASK = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' and all[i + 1] == 'pending' then n = n + 1 end
end
return n`;

// Many tasks at once: ARGV = task field, outcome, task field, outcome, ...
const FINISH_TASKS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' and all[i + 1] == 'pending' then n = n + 1 end
end
return n`;

// ARGV[1] = ttl seconds, ARGV[2] = meta JSON, then task fields. A new record (the usual case) is
// one HSET; a re-run of the reconcile job saves the same id again, and results already in (the
// agent refuses the re-sent id) must not go back to pending and end up as timeouts: HSETNX then.
const SAVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local fields = {'meta', ARGV[2]}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = 'pending' end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
for i = 3, #ARGV do redis.call('HSETNX', KEYS[1], ARGV[i], 'pending') end
return 0`;

/** How long a finished instruction stays readable for late or redelivered results. */
const DONE_TTL_S = 600;

/** Long enough for any run; the deadline job normally finishes the record much sooner. */
const TTL_S = 24 * 3600;

interface InstructionCommands {
  flukeSaveInstruction(key: string, ttlS: number, meta: string, ...fields: string[]): Promise<unknown>;
  flukeFinishTask(key: string, field: string, outcome: string): Promise<unknown>;
  flukeFinishTasks(key: string, ...fieldsAndOutcomes: string[]): Promise<unknown>;
}

export class InstructionStore {
  private readonly redis: Redis & InstructionCommands;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    const r = redis as Redis & Partial<InstructionCommands>;
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
    this.redis = redis as Redis & InstructionCommands;
  }

  async save(record: InstructionRecord): Promise<void> {
    await this.redis.flukeSaveInstruction(
      this.keys.instruction(record.instruction_id),
      TTL_S,
      JSON.stringify(record),
      ...record.tasks.map((t) => `t:${t.task}`),
    );
  }

  async get(
    instructionId: string,
  ): Promise<{ record: InstructionRecord; pending: string[]; outcomes?: Record<string, string> } | null> {
    const raw = await this.redis.hgetall(this.keys.instruction(instructionId));
    if (!raw.meta) return null;
    const record = JSON.parse(raw.meta) as InstructionRecord;
    const pending: string[] = [];
    /** Finished tasks → their outcome (`requeued` when a busy agent's task was put back). */
    const outcomes: Record<string, string> = {};
    for (const t of record.tasks) {
      const value = raw[`t:${t.task}`];
      if (value === 'pending') pending.push(t.task);
      else if (value !== undefined) outcomes[t.task] = value;
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

  /** finishTask for many tasks in one round trip (later entries win); returns what is still pending. */
  async finishTasks(instructionId: string, done: Array<{ task: string; outcome: string }>): Promise<number> {
    if (done.length === 0) return (await this.get(instructionId))?.pending.length ?? 0;
    const key = this.keys.instruction(instructionId);
    const args = done.flatMap((d) => [`t:${d.task}`, d.outcome]);
    return Number(await this.redis.flukeFinishTasks(key, ...args));
  }

  /**
   * Every task is accounted for: keep the record a little longer so a late result (one that
   * arrives after its timeout was recorded) is still recorded, then let it expire.
   */
  async complete(instructionId: string): Promise<void> {
    await this.redis.expire(this.keys.instruction(instructionId), DONE_TTL_S);
  }
}
