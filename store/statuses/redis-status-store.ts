import { ALERT_EVENTS, type AlertEvent } from '../../shared/alerts.js';
import type { Keys } from '../../shared/keys.js';
import {
  type DriftEpisode,
  isProblem,
  type NewDriftEpisode,
  type ProblemEntry,
  type TaskStatus,
} from '../../shared/status.js';
import type { RedisClient } from '../redis/client.js';
import { unpackReply } from '../redis/nul-packing.js';
import { canPipeline, execAll } from '../redis/pipeline.js';
import { type PreparedStatuses, prepareStatuses, writeStatusBatch } from './status-batch.js';
import {
  buildSnapshot,
  compare,
  markerField,
  parseEpisode,
  parseStatus,
  problemMember,
} from './status-codec.js';
import { CLOSE_SCRIPT, defineCommands, MARK_SCRIPT, type StatusPipeline } from './status-scripts.js';
import type { AgentSnapshot, StatusStore, StatusWrite } from './status-store.js';

export interface RedisStatusStoreOptions {
  redis: RedisClient;
  keys: Keys;
  /** How long an agent's statuses outlive its last result. */
  ttlMs: number;
}

export class RedisStatusStore implements StatusStore {
  private readonly redis: RedisClient;
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
    const prepared = prepareStatuses(agent, statuses, undefined, false);
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
    return writeStatusBatch(
      { redis: this.redis, keys: this.keys, ttlMs: this.ttlMs, writeOne: (p) => this.writeStatuses(p) },
      writes.map((w) => prepareStatuses(w.agent, w.statuses, w.previous, pack)),
    );
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

type Multi = ReturnType<RedisClient['multi']>;

async function exec(tx: Multi): Promise<unknown[]> {
  const replies = await tx.exec();
  if (!replies) throw new Error('redis transaction aborted');
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
