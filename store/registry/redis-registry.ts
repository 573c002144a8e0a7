/**
 * The registry in Redis. Per agent: one hash (`keys.agent(name)`, TTL = 3 × heartbeat) written by
 * Lua scripts that compare session_id atomically; plus the agent index and known-agents sorted sets
 * and the known agents' labels (separate commands: they live in another hash slot, so no script
 * may touch both in a cluster).
 */
import type { ChainableCommander } from 'ioredis';
import type { Keys } from '../../shared/keys.js';
import { decodeRegistryEntry, encodeRegistryEntry, type RegistryEntry } from '../../shared/registry-entry.js';
import type { RedisClient } from '../redis/client.js';
import { execAll, pipelineOf } from '../redis/pipeline.js';
import type { HeartbeatOutcome, PreviousSession, Registry } from './registry.js';

// KEYS[1] hash; ARGV[1] ttl ms, ARGV[2..] field/value pairs. Returns the replaced session, if any.
const REGISTER = `
local prev = redis.call('HMGET', KEYS[1], 'session_id', 'gateway_id')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return prev`;

// KEYS[1] hash; ARGV session_id, last_seen, ttl ms, running (JSON). 1 renewed, 0 missing, -1 owned by another session.
const HEARTBEAT = `
local sid = redis.call('HGET', KEYS[1], 'session_id')
if sid == ARGV[1] then
  redis.call('HSET', KEYS[1], 'last_seen', ARGV[2], 'running', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if sid == false then return 0 end
return -1`;

// KEYS[1] hash; ARGV[1] session_id, ARGV[2] ttl ms, ARGV[3..] pairs. Writes only if absent or ours.
const REBUILD = `
local sid = redis.call('HGET', KEYS[1], 'session_id')
if sid ~= false and sid ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

// KEYS[1] hash; ARGV[1] session_id.
const DEREGISTER = `
if redis.call('HGET', KEYS[1], 'session_id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

// KEYS[1] known zset, KEYS[2] known labels (same slot); ARGV[1] last_seen, ARGV[2] name,
// ARGV[3] labels JSON, ARGV[4] most names kept, ARGV[5] most trimmed per call. Records a known
// agent, then drops the least recently seen beyond the cap: O(log N) plus what it trims, so
// registration stays cheap, and a lowered cap is reached over the next registrations.
const KNOW = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local over = math.min(redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4]), tonumber(ARGV[5]))
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREM', KEYS[1], unpack(oldest))
  redis.call('HDEL', KEYS[2], unpack(oldest))
  return over
end
return 0`;
/** Most known names one registration trims (Lua's unpack() limit is far above). */
const TRIM_BATCH = 1000;
/** The default cap on known agents (server `agent_limits.max_known_agents`). */
export const DEFAULT_MAX_KNOWN_AGENTS = 100_000;

type Arg = string | number;
interface ScriptClient {
  flukeRegister(key: string, ...args: Arg[]): Promise<[string | null, string | null]>;
  flukeHeartbeat(key: string, ...args: Arg[]): Promise<number>;
  flukeRebuild(key: string, ...args: Arg[]): Promise<number>;
  flukeDeregister(key: string, sessionId: string): Promise<number>;
}
interface ScriptPipeline {
  flukeKnow(known: string, labels: string, ...args: Arg[]): ChainableCommander;
  flukeHeartbeat(key: string, ...args: Arg[]): ChainableCommander;
  flukeRebuild(key: string, ...args: Arg[]): ChainableCommander;
}

function pairs(entry: RegistryEntry): string[] {
  return Object.entries(encodeRegistryEntry(entry)).flat();
}

export interface RedisRegistryOptions {
  redis: RedisClient;
  keys: Keys;
  /** An entry's TTL: 3 × heartbeat, so a silent agent disappears by itself. */
  ttlMs: number;
  /** Known agents kept (least recently seen dropped at registration); default 100,000. */
  maxKnownAgents?: number;
}

export class RedisRegistry implements Registry {
  private readonly scripts: ScriptClient;
  private readonly redis: RedisClient;
  private readonly keys: Keys;
  private readonly ttlMs: number;
  private readonly maxKnown: number;

  constructor({ redis, keys, ttlMs, maxKnownAgents }: RedisRegistryOptions) {
    this.redis = redis;
    this.keys = keys;
    this.ttlMs = ttlMs;
    this.maxKnown = maxKnownAgents ?? DEFAULT_MAX_KNOWN_AGENTS;
    // defineCommand gives EVALSHA with a transparent EVAL fallback after SCRIPT FLUSH / restart.
    redis.defineCommand('flukeRegister', { numberOfKeys: 1, lua: REGISTER });
    redis.defineCommand('flukeHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
    redis.defineCommand('flukeRebuild', { numberOfKeys: 1, lua: REBUILD });
    redis.defineCommand('flukeDeregister', { numberOfKeys: 1, lua: DEREGISTER });
    redis.defineCommand('flukeKnow', { numberOfKeys: 2, lua: KNOW });
    this.scripts = redis as unknown as ScriptClient;
  }

  async register(entry: RegistryEntry): Promise<PreviousSession | null> {
    const [sid, gw] = await this.scripts.flukeRegister(
      this.keys.agent(entry.name),
      this.ttlMs,
      ...pairs(entry),
    );
    const pipe = pipelineOf(this.redis).zadd(this.keys.agentIndex(), entry.last_seen, entry.name);
    (pipe as unknown as ScriptPipeline).flukeKnow(
      this.keys.knownAgents(),
      this.keys.knownLabels(),
      entry.last_seen,
      entry.name,
      JSON.stringify(entry.labels),
      this.maxKnown,
      TRIM_BATCH,
    );
    await execAll(pipe);
    if (!sid || sid === entry.session_id) return null;
    return { session_id: sid, gateway_id: gw ?? '' };
  }

  async heartbeat(entries: readonly RegistryEntry[]): Promise<HeartbeatOutcome[]> {
    if (entries.length === 0) return [];
    const pipe = pipelineOf(this.redis);
    const scripted = pipe as unknown as ScriptPipeline;
    const index: Arg[] = [];
    for (const e of entries) {
      scripted.flukeHeartbeat(
        this.keys.agent(e.name),
        e.session_id,
        e.last_seen,
        this.ttlMs,
        JSON.stringify(e.running),
      );
      index.push(e.last_seen, e.name);
    }
    // One ZADD for the whole batch keeps the per-agent cost at about one command per heartbeat.
    pipe.zadd(this.keys.agentIndex(), ...index);
    const replies = await execAll(pipe);
    const outcomes: HeartbeatOutcome[] = entries.map((_, i) => (replies[i] === 1 ? 'ok' : 'replaced'));
    const missing = entries.filter((_, i) => replies[i] === 0);
    if (missing.length === 0) return outcomes;

    const rebuild = pipelineOf(this.redis);
    for (const e of missing) {
      (rebuild as unknown as ScriptPipeline).flukeRebuild(
        this.keys.agent(e.name),
        e.session_id,
        this.ttlMs,
        ...pairs(e),
      );
    }
    const known: Arg[] = missing.flatMap((e) => [e.last_seen, e.name]);
    rebuild.zadd(this.keys.knownAgents(), ...known);
    const rebuilt = await execAll(rebuild);
    let m = 0;
    entries.forEach((_, i) => {
      if (replies[i] === 0) outcomes[i] = rebuilt[m++] === 1 ? 'rebuilt' : 'replaced';
    });
    // Only the entries actually rebuilt: a session that lost its name must not overwrite the
    // labels its replacement registered with. The extra round trip happens only after a loss.
    const labels = entries.flatMap((e, i) =>
      outcomes[i] === 'rebuilt' ? [e.name, JSON.stringify(e.labels)] : [],
    );
    if (labels.length > 0) await this.redis.hset(this.keys.knownLabels(), ...labels);
    return outcomes;
  }

  async deregister(name: string, sessionId: string): Promise<boolean> {
    const removed = (await this.scripts.flukeDeregister(this.keys.agent(name), sessionId)) === 1;
    // Not atomic with the DEL (other slot). If a new session ZADDs in between, its next heartbeat
    // puts the name back in the index; the hash, which is what counts, is never touched.
    // Known-agents is refreshed here too (same slot as the index): it is otherwise written only at
    // registration, so a host connected for longer than the event TTL would drop out of it and
    // vanish from GET /agents the moment it disconnects — when operators look for it.
    if (removed)
      await this.redis
        .multi()
        .zrem(this.keys.agentIndex(), name)
        .zadd(this.keys.knownAgents(), Date.now(), name)
        .exec();
    return removed;
  }

  async get(name: string): Promise<RegistryEntry | null> {
    return decodeRegistryEntry(await this.redis.hgetall(this.keys.agent(name)));
  }

  async announce(gatewayId: string, now: number): Promise<void> {
    await this.redis.hset(this.keys.gateways(), gatewayId, String(now));
  }

  async retire(gatewayId: string): Promise<void> {
    await this.redis.hdel(this.keys.gateways(), gatewayId);
  }
}
