import type { RedisClient } from '../redis/client.js';
import { LUA_NUL_HELPERS } from '../redis/nul-packing.js';
import type { Executable } from '../redis/pipeline.js';

// Claims an alert for the episode that is open now; a stale claim from an earlier episode of
// the same task is overwritten, because it carries that episode's id.
export const MARK_SCRIPT = `
local ep = redis.call('HGET', KEYS[1], ARGV[1])
if not ep or cjson.decode(ep)['id'] ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

export const CLOSE_SCRIPT = `
local ep = redis.call('HGET', KEYS[1], ARGV[1])
if not ep then return 0 end
if ARGV[2] ~= '' and cjson.decode(ep)['id'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1], unpack(ARGV, 3))
return 1
`;

// Many statuses of one agent in one step: every field, then the TTL of both per-agent hashes
// (what setStatus's MULTI does, as one command). KEYS[1] statuses, KEYS[2] episodes (same slot);
// ARGV[1] ttl ms, ARGV[2] task, status JSON, task, ... NUL-packed (store/redis/nul-packing.ts).
export const SET_STATUSES_SCRIPT = `${LUA_NUL_HELPERS}
hsetPacked(KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`;

// Both per-agent hashes in one reply (same slot): the statuses NUL-packed with their count, then
// the episodes and claims (whose fields hold NUL) as they are. ARGV: only these tasks' statuses
// (all of them when none is given).
export const SNAPSHOT_SCRIPT = `
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
 * as one explicit pipeline each (single commands on a Cluster, store/redis/pipeline.ts).
 */
export interface StatusPipeline extends Executable {
  flukeSetStatuses(statusKey: string, driftKey: string, ttlMs: number, packed: string): unknown;
  flukeStatusSnapshot(statusKey: string, driftKey: string, ...tasks: string[]): unknown;
}

export function defineCommands(redis: RedisClient): void {
  const r = redis as RedisClient & Partial<Omit<StatusPipeline, 'exec'>>;
  if (typeof r.flukeSetStatuses !== 'function') {
    redis.defineCommand('flukeSetStatuses', { numberOfKeys: 2, lua: SET_STATUSES_SCRIPT });
  }
  if (typeof r.flukeStatusSnapshot !== 'function') {
    redis.defineCommand('flukeStatusSnapshot', { numberOfKeys: 2, lua: SNAPSHOT_SCRIPT });
  }
}
