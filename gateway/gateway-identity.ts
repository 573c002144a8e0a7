/**
 * What registration needs to know about identity: the identity key (once the gateway has it),
 * the current policy as enrollment sees it, minting, and the enrollments store.
 */

import type { IdentityConfig, ScopedAgentToken } from '../shared/config/types.js';
import { identityKeyId, mintCredential, UNSCOPED_GRANT } from '../shared/identity/agent-credential.js';
import type { IdentityPolicy } from '../shared/identity/enrollment.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { Enrollments } from '../store/identity/enrollments.js';
import { ensureIdentityKey, keepIdentityKey } from '../store/identity/identity-key.js';
import type { RedisClient } from '../store/redis/client.js';

export interface GatewayIdentity {
  enrollments: Enrollments;
  /** Null until the gateway has its key (listen() fetches it). */
  key(): Buffer | null;
  /** The policy under the current key; throws before the key is known. */
  policy(): IdentityPolicy;
  mint(name: string, grant: string, issuedAt: number): string;
  /** Records of connected agents are renewed once this old (half the enrollment TTL). */
  renewAfterMs: number;
}

export function createGatewayIdentity(opts: {
  config: IdentityConfig;
  tokens: { agent_tokens: readonly string[]; scoped_agent_tokens: readonly ScopedAgentToken[] };
  enrollments: Enrollments;
  key: () => Buffer | null;
}): GatewayIdentity {
  const { config } = opts;
  const grants = opts.tokens.scoped_agent_tokens.map((t) => t.id);
  if (opts.tokens.agent_tokens.some((t) => t.length > 0)) grants.push(UNSCOPED_GRANT);
  const revoked = new Map(
    Object.entries(config.revoked_before).map(([name, ms]) => [name, Math.ceil(ms / 1000)]),
  );
  const needKey = (): Buffer => {
    const k = opts.key();
    if (!k) throw new Error('the identity key is not loaded yet');
    return k;
  };
  return {
    enrollments: opts.enrollments,
    key: opts.key,
    renewAfterMs: Math.floor(config.enrollment_ttl_ms / 2),
    policy: () => ({
      generation: config.generation,
      key_id: identityKeyId(needKey()),
      revoked_before: revoked,
      grants,
      enrollment_ttl_ms: config.enrollment_ttl_ms,
      legacy_agents: config.legacy_agents,
    }),
    mint: (name, grant, issuedAt) =>
      mintCredential(needKey(), { name, grant, generation: config.generation, issued_at: issuedAt }),
  };
}

/**
 * The gateway's identity key and policy: given (the process wiring loaded the key), or fetched
 * from Redis at `load()` and re-asserted every `intervalMs` until `stop()`.
 */
export interface IdentityHolder {
  identity: GatewayIdentity;
  key(): Buffer | null;
  load(): Promise<void>;
  stop(): void;
}

export function holdIdentity(opts: {
  config: IdentityConfig;
  tokens: { agent_tokens: readonly string[]; scoped_agent_tokens: readonly ScopedAgentToken[] };
  enrollments: Enrollments;
  given: Buffer | null;
  redis: RedisClient;
  keys: Keys;
  logger: Logger;
  intervalMs: number;
}): IdentityHolder {
  let key = opts.given;
  let stopKeeper = () => {};
  const identity = createGatewayIdentity({ ...opts, key: () => key });
  return {
    identity,
    key: () => key,
    async load() {
      if (key) return;
      const loaded = await ensureIdentityKey(opts.redis, opts.keys, opts.config.key);
      key = loaded;
      stopKeeper = keepIdentityKey({
        redis: opts.redis,
        keys: opts.keys,
        key: loaded,
        configured: opts.config.key !== null,
        logger: opts.logger,
        intervalMs: opts.intervalMs,
      });
    },
    stop: () => stopKeeper(),
  };
}
