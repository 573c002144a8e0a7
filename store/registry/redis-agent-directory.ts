/**
 * The registry's read side in Redis: who is connected now, and who was seen recently with the
 * labels they last declared. RedisRegistry writes it; this reads it and prunes what aged out, so
 * no sweeper is needed.
 */

import type { Keys } from '../../shared/keys.js';
import { parseJsonWith } from '../../shared/parse-json.js';
import { LabelsSchema } from '../../shared/protocol.js';
import { decodeRegistryEntry, type RegistryEntry } from '../../shared/registry-entry.js';
import type { Labels } from '../../shared/types.js';
import type { RedisClient } from '../redis/client.js';
import { pipelineOf } from '../redis/pipeline.js';
import type { AgentDirectory } from './agent-directory.js';

const BATCH = 500;

// KEYS[1] known zset, KEYS[2] known labels hash (same slot); ARGV[1] cutoff ms (exclusive),
// ARGV[2] batch. Reads the stale names, then drops them from both, so the hash never outgrows
// the set; atomic, so a name re-registered meanwhile keeps its fresh labels. Batched to stay
// under Lua's unpack() limit.
const PRUNE_KNOWN = `
local batch = tonumber(ARGV[2])
local removed = 0
repeat
  local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, batch)
  if #stale > 0 then
    redis.call('ZREM', KEYS[1], unpack(stale))
    redis.call('HDEL', KEYS[2], unpack(stale))
  end
  removed = removed + #stale
until #stale < batch
return removed`;

interface DirectoryCommands {
  flukePruneKnown(known: string, labels: string, cutoff: number, batch: number): Promise<number>;
}

function decodeLabels(json: string | null): Labels | null {
  return parseJsonWith(LabelsSchema, json);
}

export interface RedisAgentDirectoryOptions {
  redis: RedisClient;
  keys: Keys;
  /** Index entries older than this are certainly expired (3× heartbeat plus slack). */
  staleAfterMs: number;
  /** How long an agent stays "known" after it was last seen. */
  knownForMs: number;
}

export class RedisAgentDirectory implements AgentDirectory {
  private readonly scripts: DirectoryCommands;
  private readonly redis: RedisClient;
  private readonly keys: Keys;
  private readonly staleAfterMs: number;
  private readonly knownForMs: number;

  constructor({ redis, keys, staleAfterMs, knownForMs }: RedisAgentDirectoryOptions) {
    this.redis = redis;
    this.keys = keys;
    this.staleAfterMs = staleAfterMs;
    this.knownForMs = knownForMs;
    const r = redis as RedisClient & Partial<DirectoryCommands>;
    // EVALSHA (falling back to EVAL after a script flush), defined once per client.
    if (typeof r.flukePruneKnown !== 'function') {
      redis.defineCommand('flukePruneKnown', { numberOfKeys: 2, lua: PRUNE_KNOWN });
    }
    this.scripts = redis as RedisClient & DirectoryCommands;
  }

  async get(name: string): Promise<RegistryEntry | null> {
    return decodeRegistryEntry(await this.redis.hgetall(this.keys.agent(name)));
  }

  async names(): Promise<string[]> {
    const cutoff = Date.now() - this.staleAfterMs;
    // Pruning here keeps the index bounded without a sweeper process.
    await this.redis.zremrangebyscore(this.keys.agentIndex(), '-inf', `(${cutoff}`);
    return this.redis.zrange(this.keys.agentIndex(), 0, '-1');
  }

  async list(): Promise<RegistryEntry[]> {
    const names = await this.names();
    const entries: RegistryEntry[] = [];
    for (let i = 0; i < names.length; i += BATCH) {
      const pipe = pipelineOf(this.redis);
      for (const name of names.slice(i, i + BATCH)) pipe.hgetall(this.keys.agent(name));
      for (const [err, hash] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        const entry = decodeRegistryEntry(hash as Record<string, string>);
        if (entry) entries.push(entry);
      }
    }
    return entries.sort((a, b) => a.name.localeCompare(b.name));
  }

  async known(): Promise<Map<string, number>> {
    const cutoff = Date.now() - this.knownForMs;
    await this.scripts.flukePruneKnown(this.keys.knownAgents(), this.keys.knownLabels(), cutoff, BATCH);
    const flat = (await this.redis.zrange(
      this.keys.knownAgents(),
      0,
      '-1',
      'WITHSCORES',
    )) as unknown as string[];
    const out = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i] as string, Number(flat[i + 1]));
    return out;
  }

  async knownLabels(names: readonly string[]): Promise<Map<string, Labels>> {
    const out = new Map<string, Labels>();
    if (names.length === 0) return out;
    const values = await this.redis.hmget(this.keys.knownLabels(), ...names);
    names.forEach((name, i) => {
      const labels = decodeLabels(values[i] ?? null);
      if (labels) out.set(name, labels);
    });
    return out;
  }
}
