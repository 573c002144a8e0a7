/**
 * (agent, task) statuses and drift episodes in Redis (docs/events.md):
 * - taskStatus(agent):   hash task → status JSON; TTL refreshed by every write for the agent.
 * - driftEpisodes(agent): hash task → episode JSON, and `task\0event` → id of the episode that
 *   claimed that alert. Same hash tag as the statuses; same TTL.
 * - statusProblems():    score-0 sorted set of `agent\0task` currently drifted or failing, so
 *   GET /drift reads one key instead of every agent. Pruned on read when the status expired.
 * Per-agent keys and the problem index sit in different cluster slots, so they are written by
 * separate commands, ordered so a crash between them leaves an extra index entry (which the
 * next read drops), never a missing one.
 */
import type { Cluster, Redis } from 'ioredis';
import { ALERT_EVENTS, type AlertEvent } from '../../shared/alerts.js';
import type { Keys } from '../../shared/keys.js';
import {
  type DriftEpisode,
  isProblem,
  type NewDriftEpisode,
  NewDriftEpisodeSchema,
  type ProblemEntry,
  type TaskStatus,
  TaskStatusSchema,
} from '../../shared/status.js';
import type { AgentSnapshot, StatusStore } from './status-store.js';

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

const markerField = (task: string, event: AlertEvent) => `${task}\0${event}`;
const problemMember = (agent: string, task: string) => `${agent}\0${task}`;

export class RedisStatusStore implements StatusStore {
  private readonly redis: Redis | Cluster;
  private readonly keys: Keys;
  private readonly ttlMs: number;

  constructor(options: RedisStatusStoreOptions) {
    if (!(options.ttlMs >= 1)) throw new RangeError('ttlMs must be positive');
    this.redis = options.redis;
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

  async setStatuses(agent: string, statuses: readonly TaskStatus[]): Promise<void> {
    if (statuses.length === 0) return;
    const last = new Map<string, TaskStatus>();
    for (const status of statuses) last.set(status.task, status);
    const all = [...last.values()];
    const problems = all.filter((s) => isProblem(s.outcome)).map((s) => problemMember(agent, s.task));
    const fine = all.filter((s) => !isProblem(s.outcome)).map((s) => problemMember(agent, s.task));
    // Same order as setStatus: index entry before the status, removal after.
    if (problems.length > 0)
      await this.redis.zadd(this.keys.statusProblems(), ...problems.flatMap((m) => [0, m]));
    await exec(
      this.redis
        .multi()
        .hset(this.keys.taskStatus(agent), ...all.flatMap((s) => [s.task, JSON.stringify(s)]))
        .pexpire(this.keys.taskStatus(agent), this.ttlMs)
        .pexpire(this.keys.driftEpisodes(agent), this.ttlMs),
    );
    if (fine.length > 0) await this.redis.zrem(this.keys.statusProblems(), ...fine);
  }

  async snapshot(agent: string): Promise<AgentSnapshot> {
    const [rawStatuses, rawDrift] = await Promise.all([
      this.redis.hgetall(this.keys.taskStatus(agent)),
      this.redis.hgetall(this.keys.driftEpisodes(agent)),
    ]);
    const out: AgentSnapshot = { statuses: new Map(), episodes: new Map() };
    for (const [task, raw] of Object.entries(rawStatuses)) {
      const status = parseStatus(raw);
      if (status) out.statuses.set(task, status);
    }
    for (const [field, raw] of Object.entries(rawDrift)) {
      if (field.includes('\0')) continue;
      const episode = parseEpisode(raw);
      if (!episode) continue;
      const alerts = ALERT_EVENTS.filter((e) => rawDrift[markerField(field, e)] === episode.id);
      out.episodes.set(field, { ...episode, alerts });
    }
    return out;
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

function parseStatus(raw: unknown): TaskStatus | null {
  const parsed = TaskStatusSchema.safeParse(parseJson(raw));
  return parsed.success ? parsed.data : null;
}

function parseEpisode(raw: unknown): NewDriftEpisode | null {
  const parsed = NewDriftEpisodeSchema.safeParse(parseJson(raw));
  return parsed.success ? parsed.data : null;
}

function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
