/**
 * Many strings as one, NUL-separated, between the results path and its Lua scripts: one argument
 * or one reply element instead of one per hash field and value. ioredis pays per argument
 * (serialising) and per reply element (a Buffer, then a string), and a batch of results moves
 * ~40 of each per agent; packed, it is one.
 *
 * Only for strings that cannot hold NUL: JSON (JSON.stringify escapes it), task names
 * (identifiers), outcomes, the literal field names. Writers check what they did not build
 * themselves and fall back to plain arguments; readers check the element count the script
 * reports and fall back to a plain read.
 */

/**
 * Lua: `splitNul(s)` → the table of the NUL-separated parts of s (`'a\0'` → {'a', ''}), and
 * `hsetPacked(key, s)` → HSET key with those parts as field, value, field, value ..., in chunks
 * that stay under unpack()'s limit.
 */
export const LUA_NUL_HELPERS = `
local function splitNul(s)
  local out = {}
  local pos = 1
  while true do
    local cut = string.find(s, '\\0', pos, true)
    if not cut then
      out[#out + 1] = string.sub(s, pos)
      return out
    end
    out[#out + 1] = string.sub(s, pos, cut - 1)
    pos = cut + 1
  end
end
local function hsetPacked(key, s)
  local parts = splitNul(s)
  for i = 1, #parts, 400 do
    redis.call('HSET', key, unpack(parts, i, math.min(i + 399, #parts)))
  end
end
`;

/** Whether any of the strings contains NUL (so they cannot be packed). */
export function anyNul(parts: readonly string[]): boolean {
  for (const part of parts) if (part.includes('\0')) return true;
  return false;
}

/**
 * The parts of a packed reply `{count, table.concat(parts, '\0'), ...}`, or null when the split
 * does not give back `count` parts (a part held a NUL: read it the plain way).
 */
export function unpackReply(reply: unknown): string[] | null {
  if (!Array.isArray(reply)) return null;
  const [count, packed] = reply as [unknown, unknown];
  if (count === 0) return [];
  if (typeof count !== 'number' || typeof packed !== 'string') return null;
  const parts = packed.split('\0');
  return parts.length === count ? parts : null;
}
