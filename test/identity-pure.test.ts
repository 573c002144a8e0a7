/** Per-agent identity, pure: credentials (shared/identity/agent-credential.ts) and enrollment rules. */
import t from 'tap';
import { createAgentAuthenticator } from '../shared/auth.js';
import {
  credentialFingerprint,
  deriveIdentityKey,
  identityKeyId,
  looksLikeCredential,
  mintCredential,
  verifyCredential,
} from '../shared/identity/agent-credential.js';
import { claimTerms, decideClaim, type IdentityPolicy } from '../shared/identity/enrollment.js';

const KEY = Buffer.alloc(32, 7);
const CLAIMS = { name: 'web-01', grant: 'staging', generation: 2, issued_at: 1_764_950_400 };
const POLICY = {
  generation: 2,
  revoked_before: new Map<string, number>(),
  hasGrant: (g: string) => g === 'staging' || g === 'unscoped',
};

t.test('a credential round-trips and names what it binds', async (t) => {
  const c = mintCredential(KEY, CLAIMS, 'AAAAAAAAAAAAAAAA');
  t.match(c, /^fluke1\.d2ViLTAx\.c3RhZ2luZw\.2\.1764950400\.AAAAAAAAAAAAAAAA\.[A-Za-z0-9_-]{43}$/);
  t.ok(looksLikeCredential(c));
  t.notOk(looksLikeCredential('agent-token-for-tests-0123456789'));
  t.same(verifyCredential(KEY, c, POLICY), {
    ok: true,
    claims: CLAIMS,
    fingerprint: credentialFingerprint(c),
  });
  t.equal(mintCredential(KEY, CLAIMS, 'AAAAAAAAAAAAAAAA'), c, 'deterministic for one nonce');
  t.not(mintCredential(KEY, CLAIMS), mintCredential(KEY, CLAIMS), 'two enrollments in one second differ');
  t.not(mintCredential(Buffer.alloc(32, 8), CLAIMS, 'AAAAAAAAAAAAAAAA'), c, 'another key, another MAC');
});

t.test('any change to a credential breaks its MAC', async (t) => {
  const c = mintCredential(KEY, CLAIMS);
  const parts = c.split('.');
  const swap = (i: number, v: string) => parts.map((p, j) => (j === i ? v : p)).join('.');
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  t.match(verifyCredential(KEY, swap(1, b64('web-02')), POLICY), { ok: false, reason: 'signature' }, 'name');
  t.match(
    verifyCredential(KEY, swap(2, b64('unscoped')), POLICY),
    { ok: false, reason: 'signature' },
    'grant',
  );
  t.match(verifyCredential(KEY, swap(4, '1764950401'), POLICY), { ok: false, reason: 'signature' }, 'issued');
  t.match(
    verifyCredential(KEY, swap(5, 'BBBBBBBBBBBBBBBB'), POLICY),
    { ok: false, reason: 'signature' },
    'nonce',
  );
  const mac = parts[6] as string;
  const flipped = `${mac.slice(0, 10)}${mac[10] === 'A' ? 'B' : 'A'}${mac.slice(11)}`;
  t.match(verifyCredential(KEY, swap(6, flipped), POLICY), { ok: false, reason: 'signature' }, 'mac');
  t.match(
    verifyCredential(Buffer.alloc(32, 9), c, POLICY),
    { ok: false, reason: 'signature' },
    'another key',
  );
  for (const bad of [
    '',
    'fluke1',
    'fluke1.....',
    `${c}.extra`,
    c.replace('fluke1', 'fluke2'),
    swap(3, '02'),
    swap(3, '-1'),
    swap(1, 'd2ViLTAx='),
    swap(6, 'short'),
    swap(5, 'short'),
    `${c}${'x'.repeat(1024)}`,
  ]) {
    t.match(
      verifyCredential(KEY, bad, POLICY),
      { ok: false, reason: 'malformed' },
      JSON.stringify(bad.slice(0, 40)),
    );
  }
});

t.test('a valid credential is refused when the configuration revoked it', async (t) => {
  const c = mintCredential(KEY, CLAIMS);
  t.match(verifyCredential(KEY, c, { ...POLICY, generation: 3 }), { ok: false, reason: 'generation' });
  t.match(verifyCredential(KEY, c, { ...POLICY, hasGrant: () => false }), { ok: false, reason: 'grant' });
  const revoked = (s: number) => ({ ...POLICY, revoked_before: new Map([['web-01', s]]) });
  t.match(verifyCredential(KEY, c, revoked(CLAIMS.issued_at + 1)), { ok: false, reason: 'revoked' });
  t.ok(verifyCredential(KEY, c, revoked(CLAIMS.issued_at)).ok, 'issued at the instant itself: still valid');
  t.ok(
    verifyCredential(KEY, c, { ...POLICY, revoked_before: new Map([['web-02', 2e9]]) }).ok,
    'another agent',
  );
});

t.test('keys, key ids and fingerprints', async (t) => {
  const k = deriveIdentityKey('a'.repeat(32));
  t.equal(k.length, 32);
  t.same(deriveIdentityKey('a'.repeat(32)), k);
  t.notSame(deriveIdentityKey('b'.repeat(32)), k);
  t.equal(identityKeyId(k), identityKeyId(Buffer.from(k)));
  t.not(identityKeyId(k), identityKeyId(KEY));
  const c = mintCredential(KEY, CLAIMS);
  const fp = credentialFingerprint(c);
  t.equal(fp.length, 22);
  t.notOk(c.includes(fp), 'the fingerprint is not a part of the credential');
});

t.test('the gateway authenticator: tokens, credentials, and credential_rejected', async (t) => {
  const key = Buffer.alloc(32, 3);
  const config = {
    agent_tokens: ['plain-token'],
    scoped_agent_tokens: [
      { id: 'staging', token: 'stg-token', allowed_labels: {}, name_pattern: 'stg-*', require_labels: true },
    ],
    identity: { generation: 1, revoked_before: { 'stg-2': Date.parse('2026-01-01T00:00:00.500Z') } },
  };
  const auth = createAgentAuthenticator(config, () => key);
  t.match(auth('plain-token'), { ok: true, auth: { kind: 'token', grant_id: 'unscoped' } });
  t.match(auth('stg-token'), { ok: true, auth: { kind: 'token', grant_id: 'staging' } });
  t.match(auth('nope'), { ok: false, code: 'unauthorized', error: 'invalid agent token' });
  t.match(auth(null), { ok: false, code: 'unauthorized', error: 'missing bearer token' });
  const cred = (name: string, grant: string, issued = 1_767_225_600, generation = 1) =>
    mintCredential(key, { name, grant, generation, issued_at: issued });
  t.match(auth(cred('stg-1', 'staging')), {
    ok: true,
    auth: {
      kind: 'credential',
      name: 'stg-1',
      grant_id: 'staging',
      grant: { kind: 'scoped', id: 'staging' },
    },
  });
  t.match(auth(cred('stg-1', 'gone')), { ok: false, code: 'credential_rejected' }, 'grant not configured');
  t.match(
    auth(cred('stg-1', 'staging', 1, 2)),
    { ok: false, code: 'credential_rejected' },
    'other generation',
  );
  // revoked_before at .500 s: whole seconds round up, so a credential of that second is refused too.
  t.match(auth(cred('stg-2', 'staging', 1_767_225_600)), { ok: false, code: 'credential_rejected' });
  t.ok(auth(cred('stg-2', 'staging', 1_767_225_601)).ok, 'issued after revoked_before');
  t.match(
    createAgentAuthenticator(config, () => null)(cred('stg-1', 'staging')),
    {
      ok: false,
      code: 'credential_rejected',
    },
    'no key loaded yet: no credential is accepted',
  );
});

const IDENTITY: IdentityPolicy = {
  generation: 1,
  key_id: 'k',
  revoked_before: new Map(),
  grants: ['unscoped'],
  enrollment_ttl_ms: 1000,
  legacy_agents: true,
};

t.test('claim terms: name_mismatch, legacy_refused, and what each claimant may replace', async (t) => {
  const credential = {
    kind: 'credential' as const,
    grant: 'unscoped',
    fingerprint: 'fp',
    issued_at: 5,
    generation: 1,
  };
  t.match(claimTerms(IDENTITY, 'web-02', credential, 'web-01'), { ok: false, code: 'name_mismatch' });
  t.match(claimTerms(IDENTITY, 'web-01', credential, 'web-01'), {
    ok: true,
    terms: { takeover: 'any_legacy', record: { identity: 'fp', issued_at: 5 } },
  });
  const legacy = { kind: 'legacy' as const, grant: 'unscoped', now_s: 9 };
  t.match(claimTerms(IDENTITY, 'web-01', legacy, null), {
    ok: true,
    terms: { takeover: 'none', record: { identity: 'grant:unscoped' } },
  });
  t.match(claimTerms({ ...IDENTITY, legacy_agents: false }, 'web-01', legacy, null), {
    ok: false,
    code: 'legacy_refused',
  });
  const enroll = { kind: 'enroll' as const, grant: 'unscoped', fingerprint: 'fp2', issued_at: 9 };
  t.match(claimTerms({ ...IDENTITY, legacy_agents: false }, 'web-01', enroll, null), {
    ok: true,
    terms: { takeover: 'same_grant', record: { identity: 'fp2', generation: 1, key_id: 'k' } },
  });
});

t.test('decideClaim on literals', async (t) => {
  const fresh = { generation: 1, key_id: 'k', revoked_before: 0, grants: ['unscoped', 'x'] };
  const rec = (identity: string, grant = 'unscoped') => ({
    identity,
    grant,
    generation: 1,
    key_id: 'k',
    issued_at: 5,
  });
  const terms = (identity: string, takeover: 'none' | 'same_grant' | 'any_legacy') => ({
    name: 'n',
    record: rec(identity),
    takeover,
    fresh,
    ttlMs: 1,
  });
  t.same(decideClaim(null, terms('a', 'none')), { ok: true, previous: null });
  t.same(decideClaim(rec('a'), terms('a', 'none')), { ok: true, previous: 'a' });
  t.same(decideClaim(rec('b'), terms('a', 'any_legacy')), { ok: false, code: 'name_held', holder: 'b' });
  t.same(decideClaim(rec('grant:x', 'x'), terms('a', 'same_grant')), {
    ok: false,
    code: 'name_held',
    holder: 'grant:x',
  });
  t.same(decideClaim(rec('grant:x', 'x'), terms('a', 'any_legacy')), { ok: true, previous: 'grant:x' });
  t.same(decideClaim(rec('grant:unscoped'), terms('a', 'same_grant')), {
    ok: true,
    previous: 'grant:unscoped',
  });
});
