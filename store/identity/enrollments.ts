import type { ClaimOutcome, ClaimTerms, EnrollmentRecord } from '../../shared/identity/enrollment.js';

/**
 * Who holds each agent name (shared/identity/enrollment.ts has the rules).
 *
 * Glossary: a *record* names the identity that holds an agent name; a *claim* applies
 * `decideClaim` and writes the claimant's record in one atomic step (two gateways racing for a
 * name cannot both win); every winning claim renews the record's TTL. *Release* removes a
 * record so another identity may enroll the name.
 */
export interface Enrollments {
  claim(terms: ClaimTerms): Promise<ClaimOutcome>;
  get(name: string): Promise<EnrollmentRecord | null>;
  /** Remove the record; true if there was one. */
  release(name: string): Promise<boolean>;
  /** Renew the TTL of records still held by these identities (long-lived sessions); no-op for others. */
  touch(held: readonly { name: string; identity: string }[], ttlMs: number): Promise<void>;
}
