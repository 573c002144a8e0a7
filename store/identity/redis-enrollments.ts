/**
 * Enrollment records in Redis: one hash per agent (`keys.enrollment(name)`, beside its registry
 * entry in the `{a:<name>}` slot), claimed by one Lua script that applies the rules of
 * `decideClaim` (shared/identity/enrollment.ts) — one round trip, atomic, so two gateways racing
 * for a name cannot both win. The contract suite runs it against the in-memory twin.
 */
import type { ChainableCommander } from 'ioredis';
import type { ClaimOutcome, ClaimTerms, EnrollmentRecord } from '../../shared/identity/enrollment.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';
import { execAll, pipelineOf } from '../redis/pipeline.js';
import type { Enrollments } from './enrollments.js';

// KEYS[1] hash. ARGV: 1 ttl ms, 2 identity, 3 grant, 4 generation, 5 key_id, 6 issued_at,
// 7 revoked_before (s), 8 takeover, 9 current generation, 10 current key_id, 11.. configured
// grants. Returns {1, previous} or {0, holder}.
const CLAIM = `
local r = redis.call('HMGET', KEYS[1], 'identity', 'grant', 'generation', 'key_id', 'issued_at')
local held = r[1]
if held then
  local fresh = tonumber(r[3]) == tonumber(ARGV[9]) and r[4] == ARGV[10]
    and tonumber(r[5]) >= tonumber(ARGV[7])
  if fresh then
    local configured = false
    for i = 11, #ARGV do
      if ARGV[i] == r[2] then configured = true end
    end
    fresh = configured
  end
  if not fresh then held = false end
end
local previous = ''
if held then
  previous = held
  if held ~= ARGV[2] then
    local legacy = string.sub(held, 1, 6) == 'grant:'
    local ok = legacy and (ARGV[8] == 'any_legacy' or (ARGV[8] == 'same_grant' and r[2] == ARGV[3]))
    if not ok then return {0, held} end
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'identity', ARGV[2], 'grant', ARGV[3], 'generation', ARGV[4],
  'key_id', ARGV[5], 'issued_at', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {1, previous}`;

// KEYS[1] hash; ARGV[1] identity, ARGV[2] ttl ms.
const TOUCH = `
if redis.call('HGET', KEYS[1], 'identity') == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

type Arg = string | number;
interface ScriptClient {
  flukeEnrollClaim(key: string, ...args: Arg[]): Promise<[number, string]>;
}
interface ScriptPipeline {
  flukeEnrollTouch(key: string, ...args: Arg[]): ChainableCommander;
}

export function decodeEnrollment(h: Record<string, string>): EnrollmentRecord | null {
  if (!h.identity || !h.grant) return null;
  return {
    identity: h.identity,
    grant: h.grant,
    generation: Number(h.generation),
    key_id: h.key_id ?? '',
    issued_at: Number(h.issued_at),
  };
}

export class RedisEnrollments implements Enrollments {
  private readonly scripts: ScriptClient;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    redis.defineCommand('flukeEnrollClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('flukeEnrollTouch', { numberOfKeys: 1, lua: TOUCH });
    this.scripts = redis as unknown as ScriptClient;
  }

  async claim(terms: ClaimTerms): Promise<ClaimOutcome> {
    const { record: r, fresh } = terms;
    const [won, who] = await this.scripts.flukeEnrollClaim(
      this.keys.enrollment(terms.name),
      terms.ttlMs,
      r.identity,
      r.grant,
      r.generation,
      r.key_id,
      r.issued_at,
      fresh.revoked_before,
      terms.takeover,
      fresh.generation,
      fresh.key_id,
      ...fresh.grants,
    );
    if (won === 1) return { ok: true, previous: who === '' ? null : who };
    return { ok: false, code: 'name_held', holder: who };
  }

  async get(name: string): Promise<EnrollmentRecord | null> {
    return decodeEnrollment(await this.redis.hgetall(this.keys.enrollment(name)));
  }

  async release(name: string): Promise<boolean> {
    return (await this.redis.del(this.keys.enrollment(name))) > 0;
  }

  async touch(held: readonly { name: string; identity: string }[], ttlMs: number): Promise<void> {
    if (held.length === 0) return;
    const pipe = pipelineOf(this.redis);
    for (const { name, identity } of held) {
      (pipe as unknown as ScriptPipeline).flukeEnrollTouch(this.keys.enrollment(name), identity, ttlMs);
    }
    await execAll(pipe);
  }
}
