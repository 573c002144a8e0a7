/**
 * Enrollment: who holds an agent name. Pure decisions; the enrollments store (store/identity/)
 * applies `decideClaim` atomically (the Redis twin runs the same rules in one Lua script).
 *
 * A record says which identity holds a name: the fingerprint of its credential, or `grant:<id>`
 * for an agent that registered with a bootstrap token without speaking `identity` (a legacy
 * agent). A record made stale by the configuration — another generation or identity key, issued
 * before the agent's `revoked_before`, or its grant no longer configured — counts as absent.
 */

export interface EnrollmentRecord {
  /** Credential fingerprint, or `grant:<id>` for a legacy registration. */
  identity: string;
  grant: string;
  generation: number;
  /** Id of the identity key the record was made under (identityKeyId). */
  key_id: string;
  /** Seconds since the epoch: when the credential was issued (legacy: when it registered). */
  issued_at: number;
}

/** The configuration a record must still match to count. */
export interface Freshness {
  generation: number;
  key_id: string;
  /** Seconds; 0 when the agent has no `revoked_before`. */
  revoked_before: number;
  grants: readonly string[];
}

/**
 * Which holders another identity may replace: `same_grant` only a legacy registration of the
 * claimant's grant (an agent enrolling), `any_legacy` a legacy registration of any grant (a
 * credential, which proves more than a bootstrap token), `none` only itself (a legacy agent).
 */
export type LegacyTakeover = 'none' | 'same_grant' | 'any_legacy';

/** One attempt to hold a name, as the store applies it. */
export interface ClaimTerms {
  name: string;
  /** What is written when the claim wins (its identity is the claimant's). */
  record: EnrollmentRecord;
  takeover: LegacyTakeover;
  fresh: Freshness;
  ttlMs: number;
}

export type ClaimOutcome =
  | { ok: true; previous: string | null }
  | { ok: false; code: 'name_held'; holder: string };

export const LEGACY_PREFIX = 'grant:';

const legacyIdentities = new Map<string, string>();

/** `grant:<id>`, one string per grant (every legacy socket of a grant holds the same one). */
export function legacyIdentity(grant: string): string {
  let identity = legacyIdentities.get(grant);
  if (identity === undefined) {
    identity = `${LEGACY_PREFIX}${grant}`;
    legacyIdentities.set(grant, identity);
  }
  return identity;
}

export function isStale(record: EnrollmentRecord, fresh: Freshness): boolean {
  return (
    record.generation !== fresh.generation ||
    record.key_id !== fresh.key_id ||
    record.issued_at < fresh.revoked_before ||
    !fresh.grants.includes(record.grant)
  );
}

/** The rule both store twins apply: may `terms` take the name from what `current` records? */
export function decideClaim(current: EnrollmentRecord | null, terms: ClaimTerms): ClaimOutcome {
  if (current === null || isStale(current, terms.fresh)) return { ok: true, previous: null };
  const mine = terms.record;
  if (current.identity === mine.identity) return { ok: true, previous: current.identity };
  const legacy = current.identity.startsWith(LEGACY_PREFIX);
  const replaceable =
    legacy &&
    (terms.takeover === 'any_legacy' || (terms.takeover === 'same_grant' && current.grant === mine.grant));
  if (replaceable) return { ok: true, previous: current.identity };
  return { ok: false, code: 'name_held', holder: current.identity };
}

/** How a registering agent authenticated, as far as enrollment cares. */
export type Claimant =
  /** A verified credential (its claims and fingerprint). */
  | { kind: 'credential'; grant: string; fingerprint: string; issued_at: number; generation: number }
  /** A bootstrap token from an agent that speaks `identity`: enroll it (a credential is minted). */
  | { kind: 'enroll'; grant: string; fingerprint: string; issued_at: number }
  /** A bootstrap token from an agent that does not speak `identity`. */
  | { kind: 'legacy'; grant: string; now_s: number };

export interface IdentityPolicy {
  generation: number;
  key_id: string;
  /** Agent name → seconds. */
  revoked_before: ReadonlyMap<string, number>;
  grants: readonly string[];
  enrollment_ttl_ms: number;
  legacy_agents: boolean;
}

export type TermsDecision =
  | { ok: true; terms: ClaimTerms }
  | { ok: false; code: RegisterRefusal; reason: string };

/** Machine codes of `refused` that come from identity checks. */
export type RegisterRefusal = 'name_held' | 'name_mismatch' | 'legacy_refused';

/**
 * The claim a registration makes, or a refusal that needs no record: a credential registering
 * another name than its own, a legacy agent where `legacy_agents = false`.
 */
export function claimTerms(
  policy: IdentityPolicy,
  name: string,
  claimant: Claimant,
  credentialName: string | null,
): TermsDecision {
  const fresh: Freshness = {
    generation: policy.generation,
    key_id: policy.key_id,
    revoked_before: policy.revoked_before.get(name) ?? 0,
    grants: policy.grants,
  };
  const base = { name, fresh, ttlMs: policy.enrollment_ttl_ms };
  switch (claimant.kind) {
    case 'credential':
      if (credentialName !== name) {
        return {
          ok: false,
          code: 'name_mismatch',
          reason: `this credential belongs to agent "${credentialName}", not "${name}"`,
        };
      }
      return {
        ok: true,
        terms: {
          ...base,
          takeover: 'any_legacy',
          record: {
            identity: claimant.fingerprint,
            grant: claimant.grant,
            generation: claimant.generation,
            key_id: policy.key_id,
            issued_at: claimant.issued_at,
          },
        },
      };
    case 'enroll':
      return {
        ok: true,
        terms: {
          ...base,
          takeover: 'same_grant',
          record: {
            identity: claimant.fingerprint,
            grant: claimant.grant,
            generation: policy.generation,
            key_id: policy.key_id,
            issued_at: claimant.issued_at,
          },
        },
      };
    case 'legacy':
      if (!policy.legacy_agents) {
        return {
          ok: false,
          code: 'legacy_refused',
          reason:
            'this gateway requires agents that enroll (identity.legacy_agents = false); upgrade the agent',
        };
      }
      return {
        ok: true,
        terms: {
          ...base,
          takeover: 'none',
          record: {
            identity: legacyIdentity(claimant.grant),
            grant: claimant.grant,
            generation: policy.generation,
            key_id: policy.key_id,
            issued_at: claimant.now_s,
          },
        },
      };
  }
}

/** The human half of a `name_held` refusal. */
export function nameHeldReason(name: string): string {
  return `agent name "${name}" is enrolled by another identity; if this host replaces it, release the name (fluke agent release ${name})`;
}
