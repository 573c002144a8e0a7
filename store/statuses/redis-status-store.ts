/**
 * (agent, task) statuses and drift episodes in Redis (docs/events.md):
 * - taskStatus(agent):   hash task → status JSON; TTL refreshed by every write for the agent.
 * - driftEpisodes(agent): hash task → episode JSON, and `task\0event` → id of the episode that
 *   claimed that alert. Same hash tag as the statuses; same TTL.
 * - statusProblems():    score-0 sorted set of `agent\0task` currently drifted or failing, so
 *   GET /drift reads one key instead of every agent. Pruned on read when the status expired.
 * Per-agent keys and the problem index sit in different cluster slots, so they are written by
 * separate commands, ordered so a crash between them leaves an extra index entry (which the
 * next read drops), never a missing one. The many-agent batches (setStatusesMany, snapshots)
 * are one Lua script per agent on its slot, all agents in one explicit pipeline.
 */
import type { Cluster, Redis } from 'ioredis';
import { ALERT_EVENTS, type AlertEvent } from '../../shared/alerts.js';
import type { Keys } from '../../shared/keys.js';
import { parseJsonWith } from '../../shared/parse-json.js';
import {
  type DriftEpisode,
  isProblem,
  type NewDriftEpisode,
  NewDriftEpisodeSchema,
  type ProblemEntry,
  type TaskStatus,
} from '../../shared/status.js';
import { DRIFT_POLICIES, STEP_OUTCOMES } from '../../shared/types.js';
import { LUA_NUL_HELPERS, unpackReply } from '../redis/nul-packing.js';
import { canPipeline, type Executable, execAll, execSettled } from '../redis/pipeline.js';
import type { AgentSnapshot, StatusStore, StatusWrite } from './status-store.js';

export interface RedisStatusStoreOptions {
  redis: Redis | Cluster;
  keys: Keys;
  /** How long an agent's statuses outlive its last result. */
  ttlMs: number;
}

// Claims an alert for the episode that is open now; a stale claim from an earlier episode of
// the same task is overwritten, because it carries that episode's id.
const MARK_SCRIPT = `
local ep = redis.call('HGET', KEYS[1], ARGV[1])
if not ep or cjson.decode(ep)['id'] ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

const CLOSE_SCRIPT = `
local ep = redis.call('HGET', KEYS[1], ARGV[1])
if not ep then return 0 end
if ARGV[2] ~= '' and cjson.decode(ep)['id'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1], unpack(ARGV, 3))
return 1
`;

// Many statuses of one agent in one step: every field, then the TTL of both per-agent hashes
// (what setStatus's MULTI does, as one command). KEYS[1] statuses, KEYS[2] episodes (same slot);
// ARGV[1] ttl ms, ARGV[2] task, status JSON, task, ... NUL-packed (reconciler/nul-packing.ts).
const SET_STATUSES_SCRIPT = `${LUA_NUL_HELPERS}
hsetPacked(KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`;

// Both per-agent hashes in one reply (same slot): the statuses NUL-packed with their count, then
// the episodes and claims (whose fields hold NUL) as they are. ARGV: only these tasks' statuses
// (all of them when none is given).
const SNAPSHOT_SCRIPT = `
local statuses = {}
if #ARGV == 0 then
  statuses = redis.call('HGETALL', KEYS[1])
else
  local values = redis.call('HMGET', KEYS[1], unpack(ARGV))
  for i = 1, #ARGV do
    if values[i] then
      statuses[#statuses + 1] = ARGV[i]
      statuses[#statuses + 1] = values[i]
    end
  end
end
return {#statuses, table.concat(statuses, '\\0'), redis.call('HGETALL', KEYS[2])}
`;

/**
 * Defined once per client (EVALSHA, falling back to EVAL after a SCRIPT FLUSH or restart), and
 * used on explicit pipelines only: the single-agent methods keep plain commands. Batches go out
 * as one explicit pipeline each (single commands on a Cluster, shared/redis-pipeline.ts).
 */
interface StatusPipeline extends Executable {
  flukeSetStatuses(statusKey: string, driftKey: string, ttlMs: number, packed: string): unknown;
  flukeStatusSnapshot(statusKey: string, driftKey: string, ...tasks: string[]): unknown;
}

/** One agent's statuses, serialised; `fields` NUL-packed unless a task name holds a NUL. */
interface PreparedStatuses {
  agent: string;
  fields: string | string[];
  problems: Array<string | number>;
  fine: string[];
}

function defineCommands(redis: Redis | Cluster): void {
  const r = redis as (Redis | Cluster) & Partial<Omit<StatusPipeline, 'exec'>>;
  if (typeof r.flukeSetStatuses !== 'function') {
    redis.defineCommand('flukeSetStatuses', { numberOfKeys: 2, lua: SET_STATUSES_SCRIPT });
  }
  if (typeof r.flukeStatusSnapshot !== 'function') {
    redis.defineCommand('flukeStatusSnapshot', { numberOfKeys: 2, lua: SNAPSHOT_SCRIPT });
  }
}

const markerField = (task: string, event: AlertEvent) => `${task}\0${event}`;
const problemMember = (agent: string, task: string) => `${agent}\0${task}`;

export class RedisStatusStore implements StatusStore {
  private readonly redis: Redis | Cluster;
  private readonly keys: Keys;
  private readonly ttlMs: number;

  constructor(options: RedisStatusStoreOptions) {
    if (!(options.ttlMs >= 1)) throw new RangeError('ttlMs must be positive');
    this.redis = options.redis;
    defineCommands(options.redis);
    this.keys = options.keys;
    this.ttlMs = Math.floor(options.ttlMs);
  }

  async setStatus(agent: string, status: TaskStatus): Promise<void> {
    const member = problemMember(agent, status.task);
    const problem = isProblem(status.outcome);
    if (problem) await this.redis.zadd(this.keys.statusProblems(), 0, member);
    await exec(
      this.redis
        .multi()
        .hset(this.keys.taskStatus(agent), status.task, JSON.stringify(status))
        .pexpire(this.keys.taskStatus(agent), this.ttlMs)
        .pexpire(this.keys.driftEpisodes(agent), this.ttlMs),
    );
    if (!problem) await this.redis.zrem(this.keys.statusProblems(), member);
  }

  /**
   * Serialises at once and keeps only the serialised batch while waiting: a results job writes
   * many agents' statuses side by side, and the status objects need not outlive the call.
   */
  setStatuses(agent: string, statuses: readonly TaskStatus[]): Promise<void> {
    const prepared = this.prepare(agent, statuses, undefined, false);
    return prepared ? this.writeStatuses(prepared) : Promise.resolve();
  }

  /**
   * setStatuses for many agents in three pipelined steps, in setStatus's order: every new
   * problem-index entry (one ZADD), then every agent's statuses (one script each), then the
   * entries of statuses that recovered (one ZREM, for agents whose statuses were written).
   * Settles per agent: one agent's failure does not fail the others.
   */
  setStatusesMany(writes: ReadonlyArray<StatusWrite>): Promise<PromiseSettledResult<void>[]> {
    // Serialised here; only the serialised batch waits for the replies (see setStatuses).
    const pack = canPipeline(this.redis);
    return this.writeMany(writes.map((w) => this.prepare(w.agent, w.statuses, w.previous, pack)));
  }

  private async writeMany(prepared: Array<PreparedStatuses | null>): Promise<PromiseSettledResult<void>[]> {
    const results: PromiseSettledResult<void>[] = prepared.map(() => ({
      status: 'fulfilled',
      value: undefined,
    }));
    const fail = (i: number, reason: unknown) => {
      results[i] = { status: 'rejected', reason };
    };
    // A task name with a NUL, or no pipelines (a Cluster): one agent at a time.
    const single: Promise<void>[] = [];
    const batched: number[] = [];
    prepared.forEach((p, i) => {
      if (!p) return;
      if (typeof p.fields === 'string') batched.push(i);
      else single.push(this.writeStatuses(p).catch((err: unknown) => fail(i, err)));
    });
    const problemsKey = this.keys.statusProblems();
    const problems: Array<string | number> = [];
    for (const i of batched) for (const m of (prepared[i] as PreparedStatuses).problems) problems.push(m);
    if (problems.length > 0) {
      try {
        await this.redis.zadd(problemsKey, ...problems);
      } catch (err) {
        for (const i of batched) if ((prepared[i] as PreparedStatuses).problems.length > 0) fail(i, err);
      }
    }
    const pipe = this.redis.pipeline() as unknown as StatusPipeline;
    const sent: number[] = [];
    for (const i of batched) {
      const p = prepared[i] as PreparedStatuses;
      if (results[i]?.status === 'rejected') continue;
      pipe.flukeSetStatuses(
        this.keys.taskStatus(p.agent),
        this.keys.driftEpisodes(p.agent),
        this.ttlMs,
        p.fields as string,
      );
      sent.push(i);
    }
    if (sent.length > 0) {
      const replies = await execSettled(pipe, sent.length);
      sent.forEach((i, j) => {
        const reply = replies[j] as PromiseSettledResult<unknown>;
        if (reply.status === 'rejected') fail(i, reply.reason);
      });
    }
    const fine: string[] = [];
    const removing: number[] = [];
    for (const i of sent) {
      const p = prepared[i] as PreparedStatuses;
      if (results[i]?.status === 'rejected' || p.fine.length === 0) continue;
      for (const m of p.fine) fine.push(m);
      removing.push(i);
    }
    if (fine.length > 0) {
      try {
        await this.redis.zrem(problemsKey, ...fine);
      } catch (err) {
        for (const i of removing) fail(i, err);
      }
    }
    await Promise.all(single);
    return results;
  }

  /** `pack`: NUL-packed for the batch script (unless a task name holds a NUL). */
  private prepare(
    agent: string,
    statuses: readonly TaskStatus[],
    previous: ReadonlyMap<string, TaskStatus | null> | undefined,
    pack: boolean,
  ): PreparedStatuses | null {
    if (statuses.length === 0) return null;
    const fields: string[] = [];
    const problems: Array<string | number> = [];
    const fine: string[] = [];
    let nul = false;
    for (const status of lastPerTask(statuses)) {
      fields.push(status.task, JSON.stringify(status));
      if (status.task.includes('\0')) nul = true;
      if (isProblem(status.outcome)) problems.push(0, problemMember(agent, status.task));
      else {
        // Known to have been fine already: it has no index entry to drop (an extra one at worst).
        const before = previous?.get(status.task);
        if (!before || isProblem(before.outcome)) fine.push(problemMember(agent, status.task));
      }
    }
    // JSON never holds a raw NUL; a task name could only by mistake: plain arguments then.
    return { agent, fields: pack && !nul ? fields.join('\0') : fields, problems, fine };
  }

  /** One agent's statuses with plain commands (a MULTI), as setStatus writes. */
  private async writeStatuses({ agent, fields, problems, fine }: PreparedStatuses): Promise<void> {
    // Same order as setStatus: index entry before the status, removal after.
    if (problems.length > 0) await this.redis.zadd(this.keys.statusProblems(), ...problems);
    const statusKey = this.keys.taskStatus(agent);
    await exec(
      this.redis
        .multi()
        .hset(statusKey, ...(typeof fields === 'string' ? fields.split('\0') : fields))
        .pexpire(statusKey, this.ttlMs)
        .pexpire(this.keys.driftEpisodes(agent), this.ttlMs),
    );
    if (fine.length > 0) await this.redis.zrem(this.keys.statusProblems(), ...fine);
  }

  async snapshot(agent: string): Promise<AgentSnapshot> {
    return this.plainSnapshot(agent);
  }

  /**
   * snapshot() of many agents in one pipeline of a script that reads both hashes of an agent at
   * once and answers its statuses NUL-packed (plain reads on a Cluster client).
   */
  async snapshots(
    agents: readonly string[],
    only?: ReadonlyArray<readonly string[] | undefined>,
  ): Promise<AgentSnapshot[]> {
    if (agents.length === 0) return [];
    const tasksOf = (i: number) => (only?.[i] ?? []) as string[];
    if (!canPipeline(this.redis))
      return Promise.all(agents.map((agent, i) => this.plainSnapshot(agent, only?.[i])));
    const pipe = this.redis.pipeline() as unknown as StatusPipeline;
    agents.forEach((agent, i) => {
      pipe.flukeStatusSnapshot(this.keys.taskStatus(agent), this.keys.driftEpisodes(agent), ...tasksOf(i));
    });
    const replies = await execAll(pipe);
    const out: AgentSnapshot[] = [];
    for (let i = 0; i < agents.length; i++)
      out.push(this.toSnapshot(replies[i]) ?? (await this.plainSnapshot(agents[i] as string, only?.[i])));
    return out;
  }

  /** The snapshot script's reply, or null if its statuses did not unpack (a NUL in a field). */
  private toSnapshot(reply: unknown): AgentSnapshot | null {
    const rawStatuses = unpackReply(reply);
    if (!rawStatuses) return null;
    return buildSnapshot(
      rawStatuses,
      Array.isArray(reply) && Array.isArray(reply[2]) ? (reply[2] as string[]) : null,
    );
  }

  /** Both hashes read plainly (side by side, not in one script). */
  private async plainSnapshot(agent: string, only?: readonly string[]): Promise<AgentSnapshot> {
    const [statuses, drift] = await Promise.all([
      this.redis.hgetall(this.keys.taskStatus(agent)),
      this.redis.hgetall(this.keys.driftEpisodes(agent)),
    ]);
    const wanted = only && only.length > 0 ? new Set(only) : null;
    const flat = Object.entries(statuses)
      .filter(([task]) => !wanted || wanted.has(task))
      .flat();
    return buildSnapshot(flat, Object.entries(drift).flat());
  }

  async getStatus(agent: string, task: string): Promise<TaskStatus | null> {
    return parseStatus(await this.redis.hget(this.keys.taskStatus(agent), task));
  }

  async listStatuses(agent: string): Promise<TaskStatus[]> {
    const all = await this.redis.hgetall(this.keys.taskStatus(agent));
    return Object.keys(all)
      .sort(compare)
      .flatMap((task) => parseStatus(all[task]) ?? []);
  }

  async listProblems(): Promise<ProblemEntry[]> {
    const key = this.keys.statusProblems();
    // Score 0 everywhere: members come back in byte order, which is agent then task.
    const members = await this.redis.zrange(key, '0', '-1');
    const byAgent = new Map<string, { member: string; task: string }[]>();
    for (const member of members) {
      const cut = member.lastIndexOf('\0');
      const agent = member.slice(0, cut);
      const list = byAgent.get(agent) ?? [];
      list.push({ member, task: member.slice(cut + 1) });
      byAgent.set(agent, list);
    }
    const stale: string[] = [];
    const out: ProblemEntry[] = [];
    const agents = [...byAgent.keys()];
    const replies = await Promise.all(
      agents.map((agent) =>
        this.redis.hmget(this.keys.taskStatus(agent), ...(byAgent.get(agent) ?? []).map((e) => e.task)),
      ),
    );
    agents.forEach((agent, i) => {
      (byAgent.get(agent) ?? []).forEach((entry, j) => {
        const status = parseStatus(replies[i]?.[j]);
        if (status && isProblem(status.outcome)) out.push({ agent, status });
        else stale.push(entry.member);
      });
    });
    if (stale.length > 0) await this.redis.zrem(key, ...stale);
    return out;
  }

  async openEpisode(agent: string, episode: NewDriftEpisode): Promise<boolean> {
    const key = this.keys.driftEpisodes(agent);
    const replies = await exec(
      this.redis
        .multi()
        .hsetnx(key, episode.task, JSON.stringify(episode))
        .pexpire(key, this.ttlMs)
        .pexpire(this.keys.taskStatus(agent), this.ttlMs),
    );
    return replies[0] === 1;
  }

  async getEpisode(agent: string, task: string): Promise<DriftEpisode | null> {
    const [raw, ...claims] = await this.redis.hmget(
      this.keys.driftEpisodes(agent),
      task,
      ...ALERT_EVENTS.map((e) => markerField(task, e)),
    );
    const episode = parseEpisode(raw);
    if (!episode) return null;
    return { ...episode, alerts: ALERT_EVENTS.filter((_, i) => claims[i] === episode.id) };
  }

  async markAlerted(agent: string, task: string, episodeId: string, event: AlertEvent): Promise<boolean> {
    const reply = await this.redis.eval(
      MARK_SCRIPT,
      1,
      this.keys.driftEpisodes(agent),
      task,
      episodeId,
      markerField(task, event),
      this.ttlMs,
    );
    return reply === 1;
  }

  async closeEpisode(agent: string, task: string, episodeId?: string): Promise<boolean> {
    const reply = await this.redis.eval(
      CLOSE_SCRIPT,
      1,
      this.keys.driftEpisodes(agent),
      task,
      episodeId ?? '',
      ...ALERT_EVENTS.map((e) => markerField(task, e)),
    );
    return reply === 1;
  }

  async forgetTasks(agent: string, keep: readonly string[]): Promise<string[]> {
    const kept = new Set(keep);
    const statusKey = this.keys.taskStatus(agent);
    const driftKey = this.keys.driftEpisodes(agent);
    const [statusFields, driftFields] = await Promise.all([
      this.redis.hkeys(statusKey),
      this.redis.hkeys(driftKey),
    ]);
    const taskOf = (field: string) => {
      const cut = field.indexOf('\0');
      return cut < 0 ? field : field.slice(0, cut);
    };
    const dropStatus = statusFields.filter((f) => !kept.has(f));
    const dropDrift = driftFields.filter((f) => !kept.has(taskOf(f)));
    const gone = [...new Set([...dropStatus, ...dropDrift.map(taskOf)])].sort(compare);
    if (gone.length === 0) return [];
    const tx = this.redis.multi();
    if (dropStatus.length > 0) tx.hdel(statusKey, ...dropStatus);
    if (dropDrift.length > 0) tx.hdel(driftKey, ...dropDrift);
    await exec(tx);
    await this.redis.zrem(this.keys.statusProblems(), ...gone.map((task) => problemMember(agent, task)));
    return gone;
  }

  /** The client belongs to the process wiring, which closes it. */
  async close(): Promise<void> {}
}

/** Statuses and episodes from the two hashes' flat field, value lists. */
function buildSnapshot(rawStatuses: readonly string[], rawDrift: readonly string[] | null): AgentSnapshot {
  const out: AgentSnapshot = { statuses: new Map(), episodes: new Map() };
  for (let i = 0; i + 1 < rawStatuses.length; i += 2) {
    const status = parseStatus(rawStatuses[i + 1]);
    if (status) out.statuses.set(rawStatuses[i] as string, status);
  }
  if (!rawDrift || rawDrift.length === 0) return out;
  const drift = new Map<string, string>();
  for (let i = 0; i + 1 < rawDrift.length; i += 2)
    drift.set(rawDrift[i] as string, rawDrift[i + 1] as string);
  for (const [field, raw] of drift) {
    if (field.includes('\0')) continue;
    const episode = parseEpisode(raw);
    if (!episode) continue;
    const alerts = ALERT_EVENTS.filter((e) => drift.get(markerField(field, e)) === episode.id);
    out.episodes.set(field, { ...episode, alerts });
  }
  return out;
}

/** The last status of each task, in first-seen order. */
function lastPerTask(statuses: readonly TaskStatus[]): TaskStatus[] {
  const byTask = new Map<string, TaskStatus>();
  for (const status of statuses) byTask.set(status.task, status);
  return [...byTask.values()];
}

type Multi = ReturnType<Redis['multi']>;

async function exec(tx: Multi): Promise<unknown[]> {
  const replies = await tx.exec();
  if (!replies) throw new Error('redis transaction aborted');
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

function parseJson(raw: unknown): unknown {
  if (typeof raw !== 'string') return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

const OUTCOMES: ReadonlySet<string> = new Set(STEP_OUTCOMES);
const POLICIES: ReadonlySet<string> = new Set(DRIFT_POLICIES);
const STATUS_FIELDS = 9;

function isStringArray(value: unknown): value is string[] {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

/**
 * TaskStatusSchema.safeParse, by hand: snapshots parse every status of an agent on each batch,
 * and zod's copying dominated that. Accepts and returns exactly what the schema does (unknown
 * keys stripped); test/status-store.test.ts holds the two to each other.
 */
export function toTaskStatus(value: unknown): TaskStatus | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const o = value as Record<string, unknown>;
  if (
    typeof o.task !== 'string' ||
    o.task.length === 0 ||
    typeof o.outcome !== 'string' ||
    !OUTCOMES.has(o.outcome) ||
    (o.mode !== 'check' && o.mode !== 'apply') ||
    typeof o.revision !== 'string' ||
    typeof o.execution_id !== 'string' ||
    o.execution_id.length === 0 ||
    typeof o.at !== 'string' ||
    !isStringArray(o.drifted_steps) ||
    !isStringArray(o.failed_steps) ||
    typeof o.policy !== 'string' ||
    !POLICIES.has(o.policy)
  )
    return null;
  let keys = 0;
  for (const key in o) if (Object.hasOwn(o, key)) keys++;
  if (keys === STATUS_FIELDS && Object.getPrototypeOf(o) === Object.prototype)
    return o as unknown as TaskStatus;
  return {
    task: o.task,
    outcome: o.outcome as TaskStatus['outcome'],
    mode: o.mode,
    revision: o.revision,
    execution_id: o.execution_id,
    at: o.at,
    drifted_steps: o.drifted_steps,
    failed_steps: o.failed_steps,
    policy: o.policy as TaskStatus['policy'],
  };
}

function parseStatus(raw: unknown): TaskStatus | null {
  return toTaskStatus(parseJson(raw));
}

function parseEpisode(raw: unknown): NewDriftEpisode | null {
  return parseJsonWith(NewDriftEpisodeSchema, raw);
}

function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
