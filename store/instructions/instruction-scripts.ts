/**
 * The instruction store's Lua scripts (redis-instruction-store.ts). Each touches one record hash
 * (`meta` → JSON, `t:<task>` → "pending" | outcome) and never recreates a record that expired.
 */
import { LUA_NUL_HELPERS } from '../redis/nul-packing.js';

export const FINISH_TASK = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' and all[i + 1] == 'pending' then n = n + 1 end
end
return n`;

// Many tasks at once: ARGV = task field, outcome, task field, outcome, ...
export const FINISH_TASKS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' and all[i + 1] == 'pending' then n = n + 1 end
end
return n`;

// FINISH_TASKS, then complete, in one step: ARGV[1] = '1' to complete even with tasks still
// pending, ARGV[2] = the completed record's TTL (s), ARGV[3] = task field, outcome, ... NUL-packed
// (store/redis/nul-packing.ts). A record with nothing left pending is completed (its TTL
// shortened) as complete() would.
export const SETTLE_TASKS = `${LUA_NUL_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
hsetPacked(KEYS[1], ARGV[3])
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 't:' and all[i + 1] == 'pending' then n = n + 1 end
end
if n == 0 or ARGV[1] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n`;

// The whole record, NUL-packed with its element count (one reply element instead of two per task).
export const GET = `
local all = redis.call('HGETALL', KEYS[1])
return {#all, table.concat(all, '\\0')}`;

// ARGV[1] = ttl seconds, ARGV[2] = meta JSON, then task fields. A new record (the usual case) is
// one HSET; a re-run of the reconcile job saves the same id again, and results already in (the
// agent refuses the re-sent id) must not go back to pending and end up as timeouts: HSETNX then.
export const SAVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local fields = {'meta', ARGV[2]}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = 'pending' end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
for i = 3, #ARGV do redis.call('HSETNX', KEYS[1], ARGV[i], 'pending') end
return 0`;
