/**
 * What the gateway checks before it lets an agent in, with the I/O left to the callers: failed
 * upgrades per source address (HTTP 429 once the burst is spent, and one warn line per address
 * per 10 s with a count), and registrations per source address and per token grant (1013 when
 * over) plus the label limits (`refused`, 4403). All of it runs before any Redis write. The
 * limits and their defaults are `server.agent_limits` (shared/config/agent-limits.ts).
 */
import { labelsProblem } from '../shared/agent-rules.js';
import type { TokenGrant } from '../shared/auth.js';
import { type AgentLimitsConfig, DEFAULT_AGENT_LIMITS } from '../shared/config/agent-limits.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode } from '../shared/protocol.js';
import { ThrottledReport, TokenBuckets } from '../shared/rate-limit.js';
import type { Labels } from '../shared/types.js';

/** Not in CloseCode: registration could not be stored, or is rate limited; the agent retries with backoff. */
export const TRY_AGAIN_LATER = 1013;
/** Refusal log lines: at most one per address per this interval. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** Reasons close codes carry for a registration over its rate limit. */
export const RATE_LIMITED_PREFIX = 'registration rate limit';

export type UpgradeRefusal = 'missing_token' | 'bad_token' | 'credential_rejected' | 'throttled';

export type Admission = { ok: true } | { ok: false; code: number; reason: string };

/** The grant's bucket key: each `agent_token` block alone, every `agent_tokens` entry together. */
export function grantKey(grant: TokenGrant): string {
  return grant.kind === 'scoped' ? `agent_token "${grant.id}"` : 'agent_tokens';
}

export class AgentAdmission {
  private readonly failures: TokenBuckets;
  private readonly byAddress: TokenBuckets;
  private readonly byGrant: TokenBuckets;
  private readonly report: ThrottledReport;
  readonly limits: AgentLimitsConfig;

  constructor(
    limits: Partial<AgentLimitsConfig> | undefined,
    private readonly logger: Logger,
    private readonly counted?: (reason: UpgradeRefusal) => void,
  ) {
    const l = { ...DEFAULT_AGENT_LIMITS, ...limits };
    this.limits = l;
    const tracked = l.max_tracked_addresses;
    this.failures = new TokenBuckets(
      { ratePerSecond: l.failed_upgrade_rate, burst: l.failed_upgrade_burst },
      tracked,
    );
    this.byAddress = new TokenBuckets(
      { ratePerSecond: l.address_registration_rate, burst: l.address_registration_burst },
      tracked,
    );
    // Grants are few (one per agent_token block, plus agent_tokens): the bound is a formality.
    this.byGrant = new TokenBuckets(
      { ratePerSecond: l.grant_registration_rate, burst: l.grant_registration_burst },
      tracked,
    );
    this.report = new ThrottledReport(REFUSAL_LOG_INTERVAL_MS, tracked);
  }

  /**
   * Before the token is even looked at: seconds to tell a throttled address to wait (HTTP 429,
   * Retry-After), or null. A throttled upgrade is counted and logged like a refused one.
   */
  throttled(remote: string, now: number): number | null {
    if (!this.failures.empty(remote, now)) return null;
    this.refusedUpgrade(remote, 'throttled', now);
    return Math.max(1, Math.ceil(1 / this.limits.failed_upgrade_rate));
  }

  /** An upgrade refused for a missing or wrong token: spends the address's failure burst. */
  refusedUpgrade(remote: string, reason: UpgradeRefusal, now: number): void {
    if (reason !== 'throttled') this.failures.take(remote, now);
    this.counted?.(reason);
    const count = this.report.note(remote, now);
    if (count !== null) {
      this.logger.warn(
        { remote, reason, count, window_ms: REFUSAL_LOG_INTERVAL_MS },
        'agent upgrade refused',
      );
    }
  }

  /** A `register` that parsed: its rate limits, then its labels against the limits. */
  register(remote: string, grant: TokenGrant, labels: Labels, now: number): Admission {
    const address = this.byAddress.take(remote, now);
    if (!address.ok) {
      return {
        ok: false,
        code: TRY_AGAIN_LATER,
        reason: `${RATE_LIMITED_PREFIX} for ${remote} (address_registration_rate = ${this.limits.address_registration_rate}/s), retry later`,
      };
    }
    const byGrant = this.byGrant.take(grantKey(grant), now);
    if (!byGrant.ok) {
      return {
        ok: false,
        code: TRY_AGAIN_LATER,
        reason: `${RATE_LIMITED_PREFIX} for ${grantKey(grant)} (grant_registration_rate = ${this.limits.grant_registration_rate}/s), retry later`,
      };
    }
    const problem = labelsProblem(labels, this.limits);
    return problem === null ? { ok: true } : { ok: false, code: CloseCode.refused, reason: problem };
  }
}
