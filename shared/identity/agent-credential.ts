/**
 * Per-agent credentials: pure minting and verification, no I/O and no storage.
 *
 * A credential binds an agent name to the grant it enrolled with (a scoped `agent_token "<id>"`
 * block, or `unscoped` for the plain `agent_tokens`), the key generation and the instant it was
 * issued, under an HMAC-SHA256 of the server's identity key. Any gateway holding the key verifies
 * it without a lookup:
 *
 *   fluke1.<base64url(name)>.<base64url(grant)>.<generation>.<issued-at seconds>.<nonce>.<base64url(mac)>
 *
 * The random nonce makes two enrollments of one name within one second two identities (the
 * fingerprint of a credential is what its enrollment record names).
 *
 * The credential itself is a secret: only its fingerprint (`credentialFingerprint`) goes into
 * records and logs.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const CREDENTIAL_PREFIX = 'fluke1';
/** The grant of every plain `agent_tokens` entry, as credentials and enrollment records name it. */
export const UNSCOPED_GRANT = 'unscoped';
/** Domain separation: this key signs nothing else in this exact form. */
const MAC_DOMAIN = 'fluke agent credential v1';
/** Longest bearer we try to parse as a credential (a 253-character name fits with room). */
const MAX_CREDENTIAL_LENGTH = 1024;

export interface CredentialClaims {
  name: string;
  grant: string;
  generation: number;
  /** Seconds since the epoch. */
  issued_at: number;
}

/** What verification needs from the current configuration. */
export interface CredentialPolicy {
  generation: number;
  /** Agent name → seconds: credentials of that agent issued before it are refused. */
  revoked_before: ReadonlyMap<string, number>;
  /** Whether a grant id is still configured. */
  hasGrant(grant: string): boolean;
}

export type CredentialVerdict =
  | { ok: true; claims: CredentialClaims; fingerprint: string }
  | { ok: false; reason: CredentialRejection };

export type CredentialRejection = 'malformed' | 'signature' | 'generation' | 'revoked' | 'grant';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

function mac(key: Buffer, c: CredentialClaims, nonce: string): Buffer {
  // NUL separators: names and grant ids never contain one, so the fields cannot run together.
  const text = [MAC_DOMAIN, c.name, c.grant, String(c.generation), String(c.issued_at), nonce].join('\0');
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** `nonce`: 16 base64url characters; random unless a test pins it. */
export function mintCredential(
  key: Buffer,
  claims: CredentialClaims,
  nonce: string = randomBytes(12).toString('base64url'),
): string {
  return [
    CREDENTIAL_PREFIX,
    b64(claims.name),
    b64(claims.grant),
    String(claims.generation),
    String(claims.issued_at),
    nonce,
    mac(key, claims, nonce).toString('base64url'),
  ].join('.');
}

/** Bearers that start like a credential are verified as one; anything else is a bootstrap token. */
export function looksLikeCredential(bearer: string): boolean {
  return bearer.startsWith(`${CREDENTIAL_PREFIX}.`);
}

/** A short, stable, non-secret name for a credential (records, logs). */
export function credentialFingerprint(credential: string): string {
  return createHash('sha256').update(credential, 'utf8').digest('base64url').slice(0, 22);
}

const WHOLE = /^(0|[1-9][0-9]{0,14})$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

const NONCE = /^[A-Za-z0-9_-]{16}$/;

function parse(credential: string): { claims: CredentialClaims; nonce: string; mac: Buffer } | null {
  if (credential.length > MAX_CREDENTIAL_LENGTH) return null;
  const parts = credential.split('.');
  if (parts.length !== 7 || parts[0] !== CREDENTIAL_PREFIX) return null;
  const [, name64, grant64, gen, iat, nonce, mac64] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!B64URL.test(name64) || !B64URL.test(grant64) || !B64URL.test(mac64) || !NONCE.test(nonce)) return null;
  if (!WHOLE.test(gen) || !WHOLE.test(iat)) return null;
  const name = Buffer.from(name64, 'base64url').toString('utf8');
  const grant = Buffer.from(grant64, 'base64url').toString('utf8');
  // Re-encoding must give back the same text: one credential, one spelling.
  if (b64(name) !== name64 || b64(grant) !== grant64 || name === '' || grant === '') return null;
  const sig = Buffer.from(mac64, 'base64url');
  if (sig.length !== 32) return null;
  return { claims: { name, grant, generation: Number(gen), issued_at: Number(iat) }, nonce, mac: sig };
}

/**
 * Checks the MAC (constant time), then that the credential is still current: its generation is
 * the configured one, its grant is still configured, and it was not issued before the agent's
 * `revoked_before`.
 */
export function verifyCredential(
  key: Buffer,
  credential: string,
  policy: CredentialPolicy,
): CredentialVerdict {
  const parsed = parse(credential);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const { claims } = parsed;
  if (!timingSafeEqual(parsed.mac, mac(key, claims, parsed.nonce))) return { ok: false, reason: 'signature' };
  if (claims.generation !== policy.generation) return { ok: false, reason: 'generation' };
  if (!policy.hasGrant(claims.grant)) return { ok: false, reason: 'grant' };
  const revokedBefore = policy.revoked_before.get(claims.name);
  if (revokedBefore !== undefined && claims.issued_at < revokedBefore)
    return { ok: false, reason: 'revoked' };
  return { ok: true, claims, fingerprint: credentialFingerprint(credential) };
}

/** The identity key actually used for MACs, from the configured `identity.key` text. */
export function deriveIdentityKey(configured: string): Buffer {
  return createHash('sha256').update(`fluke identity key v1\0${configured}`, 'utf8').digest();
}

/** A short id of a key, stored in enrollment records so a key change makes old records stale. */
export function identityKeyId(key: Buffer): string {
  return createHash('sha256').update('fluke identity key id\0').update(key).digest('base64url').slice(0, 11);
}
