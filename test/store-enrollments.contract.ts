/**
 * The enrollments contract (store/identity/enrollments.ts), run against the memory twin and the
 * Redis implementation (whose Lua applies decideClaim's rules) by store-enrollments.test.ts.
 */
import type { Test } from 'tap';
import type { ClaimTerms, EnrollmentRecord, LegacyTakeover } from '../shared/identity/enrollment.js';
import type { Enrollments } from '../store/identity/enrollments.js';

const FRESH = { generation: 2, key_id: 'k1', revoked_before: 0, grants: ['unscoped', 'staging'] };

export function terms(
  identity: string,
  over: {
    grant?: string;
    takeover?: LegacyTakeover;
    issued_at?: number;
    fresh?: Partial<typeof FRESH>;
    ttlMs?: number;
  } = {},
): ClaimTerms {
  const record: EnrollmentRecord = {
    identity,
    grant: over.grant ?? 'unscoped',
    generation: 2,
    key_id: 'k1',
    issued_at: over.issued_at ?? 1_000,
  };
  return {
    name: 'web-01',
    record,
    takeover: over.takeover ?? 'same_grant',
    fresh: { ...FRESH, ...over.fresh },
    ttlMs: over.ttlMs ?? 60_000,
  };
}

export function enrollmentsContract(t: Test, make: () => Enrollments) {
  t.test('an absent name is claimed; the same identity claims it again', async (t) => {
    const store = make();
    t.same(await store.claim(terms('fp-a')), { ok: true, previous: null });
    t.same(await store.get('web-01'), terms('fp-a').record);
    t.same(await store.claim(terms('fp-a', { issued_at: 2_000 })), { ok: true, previous: 'fp-a' });
    t.equal((await store.get('web-01'))?.issued_at, 2_000, 'the record is rewritten');
  });

  t.test('another live identity is refused and the holder is untouched', async (t) => {
    const store = make();
    await store.claim(terms('fp-a'));
    for (const takeover of ['none', 'same_grant', 'any_legacy'] as const) {
      t.same(await store.claim(terms('fp-b', { takeover })), {
        ok: false,
        code: 'name_held',
        holder: 'fp-a',
      });
    }
    t.equal((await store.get('web-01'))?.identity, 'fp-a');
  });

  t.test(
    'legacy holders: same grant for enrollment, any grant for a credential, never for legacy',
    async (t) => {
      const store = make();
      await store.claim(terms('grant:staging', { grant: 'staging', takeover: 'none' }));
      t.same(await store.claim(terms('grant:unscoped', { takeover: 'none' })), {
        ok: false,
        code: 'name_held',
        holder: 'grant:staging',
      });
      t.same(await store.claim(terms('fp-a', { takeover: 'same_grant' })), {
        ok: false,
        code: 'name_held',
        holder: 'grant:staging',
      });
      t.same(await store.claim(terms('fp-a', { grant: 'staging', takeover: 'same_grant' })), {
        ok: true,
        previous: 'grant:staging',
      });
      await store
        .claim(terms('grant:staging', { grant: 'staging', takeover: 'none' }))
        .then((o) =>
          t.same(
            o,
            { ok: false, code: 'name_held', holder: 'fp-a' },
            'a legacy agent cannot take an enrolled name',
          ),
        );
      const other = make();
      await other.claim(terms('grant:staging', { grant: 'staging', takeover: 'none' }));
      t.same(await other.claim(terms('fp-c', { takeover: 'any_legacy' })), {
        ok: true,
        previous: 'grant:staging',
      });
    },
  );

  t.test('a record made stale by the configuration counts as absent', async (t) => {
    const cases: Array<[string, Partial<typeof FRESH>]> = [
      ['generation bumped', { generation: 3 }],
      ['key changed', { key_id: 'k2' }],
      ['issued before revoked_before', { revoked_before: 1_001 }],
      ['grant removed', { grants: ['unscoped'] }],
    ];
    for (const [why, fresh] of cases) {
      const store = make();
      await store.claim(terms('fp-a', { grant: 'staging' }));
      t.same(await store.claim(terms('fp-b', { fresh })), { ok: true, previous: null }, why);
      t.equal((await store.get('web-01'))?.identity, 'fp-b', why);
    }
    const store = make();
    await store.claim(terms('fp-a'));
    t.same(
      await store.claim(terms('fp-b', { fresh: { revoked_before: 1_000 } })),
      { ok: false, code: 'name_held', holder: 'fp-a' },
      'issued exactly at revoked_before is still current',
    );
  });

  t.test('release removes the record; touch renews only the holder', async (t) => {
    const store = make();
    t.equal(await store.release('web-01'), false);
    await store.claim(terms('fp-a', { ttlMs: 60_000 }));
    await store.touch([{ name: 'web-01', identity: 'fp-other' }], 120_000);
    await store.touch([{ name: 'web-01', identity: 'fp-a' }], 120_000);
    t.equal(await store.release('web-01'), true);
    t.equal(await store.get('web-01'), null);
    t.same(await store.claim(terms('fp-b')), { ok: true, previous: null });
  });
}
