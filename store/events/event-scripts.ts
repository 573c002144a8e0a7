/**
 * The event store's Lua scripts (redis-event-store.ts): recording one agent's events atomically
 * with its index and trim, and adding to a per-task or the global index with a lazy trim.
 */
import type { RedisClient } from '../redis/client.js';

// Records events of one agent, in one slot (the agent's hash tag), atomically: the events, their
// agent-index entries, and deleting what the per-agent bound trims, so a reader never sees an
// index entry before its event. KEYS[1] the agent index, KEYS[2..] the events;
// ARGV: ttl, max per agent, event key prefix, prefix length, floor, then JSON and member per event.
// Returns per event 1 (new) or the stored JSON (a repeat). One trim and PEXPIRE for all.
const RECORD_MANY_SCRIPT = `
local out = {}
local added = false
for i = 2, #KEYS do
  local json = ARGV[6 + (i - 2) * 2]
  local member = ARGV[7 + (i - 2) * 2]
  if redis.call('SET', KEYS[i], json, 'PX', ARGV[1], 'NX') then
    redis.call('ZADD', KEYS[1], 0, member)
    added = true
    out[i - 1] = 1
  else
    out[i - 1] = redis.call('GET', KEYS[i]) or 0
  end
end
if added then
  redis.call('ZREMRANGEBYLEX', KEYS[1], '-', '(' .. ARGV[5])
  local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
  if over > 0 then
    local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
    local skip = tonumber(ARGV[4])
    for _, m in ipairs(old) do
      redis.call('DEL', ARGV[3] .. string.sub(m, skip + 1))
    end
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return out
`;

// A per-task or the global index: add, and trim (expired by time, then oldest beyond the bound)
// only when it is over the bound by more than the slack, so the trim runs once per `slack`
// writes instead of on every write. Readers trim to the exact bound before reading.
// ARGV: floor, max, slack, ttl, then the members to add.
const INDEX_SCRIPT = `
for i = 5, #ARGV do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
local max = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) > max + tonumber(ARGV[3]) then
  redis.call('ZREMRANGEBYLEX', KEYS[1], '-', '(' .. ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(max + 1))
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/** Defined once per client: EVALSHA, falling back to EVAL after a SCRIPT FLUSH or restart. */
export interface EventCommands {
  flukeEventIndex(...args: Array<string | number>): Promise<unknown>;
  flukeEventRecordMany(numberOfKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

export function withCommands(redis: RedisClient): RedisClient & EventCommands {
  const r = redis as RedisClient & Partial<EventCommands>;
  if (typeof r.flukeEventRecordMany !== 'function') {
    // Variable key count: passed first at each call.
    redis.defineCommand('flukeEventRecordMany', { lua: RECORD_MANY_SCRIPT });
  }
  if (typeof r.flukeEventIndex !== 'function') {
    redis.defineCommand('flukeEventIndex', { numberOfKeys: 1, lua: INDEX_SCRIPT });
  }
  return redis as RedisClient & EventCommands;
}
