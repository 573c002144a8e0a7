/** The in-memory twin of RedisEnrollments: same rules (decideClaim), TTL checked on read. */
import {
  type ClaimOutcome,
  type ClaimTerms,
  decideClaim,
  type EnrollmentRecord,
} from '../../shared/identity/enrollment.js';
import type { Enrollments } from './enrollments.js';

export class MemoryEnrollments implements Enrollments {
  private readonly records = new Map<string, { record: EnrollmentRecord; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  private live(name: string): EnrollmentRecord | null {
    const held = this.records.get(name);
    if (!held) return null;
    if (held.expiresAt <= this.now()) {
      this.records.delete(name);
      return null;
    }
    return held.record;
  }

  async claim(terms: ClaimTerms): Promise<ClaimOutcome> {
    const outcome = decideClaim(this.live(terms.name), terms);
    if (outcome.ok) {
      this.records.set(terms.name, { record: { ...terms.record }, expiresAt: this.now() + terms.ttlMs });
    }
    return outcome;
  }

  async get(name: string): Promise<EnrollmentRecord | null> {
    const record = this.live(name);
    return record ? { ...record } : null;
  }

  async release(name: string): Promise<boolean> {
    const had = this.live(name) !== null;
    this.records.delete(name);
    return had;
  }

  async touch(held: readonly { name: string; identity: string }[], ttlMs: number): Promise<void> {
    for (const { name, identity } of held) {
      const record = this.live(name);
      if (record?.identity === identity) this.records.set(name, { record, expiresAt: this.now() + ttlMs });
    }
  }
}
