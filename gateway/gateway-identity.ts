/**
 * What registration needs to know about identity: the identity key (once the gateway has it),
 * the current policy as enrollment sees it, minting, and the enrollments store.
 */

import { DEFAULT_IDENTITY } from '../shared/config/identity-config.js';
import type { IdentityConfig, ScopedAgentToken } from '../shared/config/types.js';
import { identityKeyId, mintCredential, UNSCOPED_GRANT } from '../shared/identity/agent-credential.js';
import type { IdentityPolicy } from '../shared/identity/enrollment.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { Enrollments } from '../store/identity/enrollments.js';
import { ensureIdentityKey, keepIdentityKey } from '../store/identity/identity-key.js';
import { RedisEnrollments } from '../store/identity/redis-enrollments.js';
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
 * The gateway's identity key: the one its options gave (bin/ passes the process's), or loaded by
 * `load()` before the gateway listens and then kept asserted in Redis until `stop()`.
 */
export class IdentityKeyHolder {
  key: Buffer | null;
  private stopKeeper = () => {};

  constructor(
    private readonly opts: {
      identityKey?: Buffer;
      redis: RedisClient;
      config: { identity?: IdentityConfig };
    },
    private readonly keys: Keys,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {
    this.key = opts.identityKey ?? null;
  }

  async load(): Promise<void> {
    if (this.key) return;
    const configured = this.opts.config.identity?.key ?? null;
    const key = await ensureIdentityKey(this.opts.redis, this.keys, configured);
    this.key = key;
    this.stopKeeper = keepIdentityKey({
      redis: this.opts.redis,
      keys: this.keys,
      key,
      configured: configured !== null,
      logger: this.logger,
      intervalMs: this.intervalMs,
    });
  }

  stop(): void {
    this.stopKeeper();
  }
}

/** createGateway's identity: its config (or the defaults), its enrollments (or Redis's), its key. */
export function identityOf(
  opts: {
    config: { identity?: IdentityConfig; agent_tokens: string[]; scoped_agent_tokens: ScopedAgentToken[] };
    redis: RedisClient;
    enrollments?: Enrollments;
  },
  keys: Keys,
  holder: IdentityKeyHolder,
): GatewayIdentity {
  return createGatewayIdentity({
    config: opts.config.identity ?? DEFAULT_IDENTITY,
    tokens: opts.config,
    enrollments: opts.enrollments ?? new RedisEnrollments(opts.redis, keys),
    key: () => holder.key,
  });
}
