/**
 * Agent authentication and authorisation: pure decisions, no I/O.
 *
 * - `createTokenVerifier` answers "which token is this?" in constant time: every configured token is
 *   compared (no early exit) and the comparison runs over SHA-256 digests, so neither the position
 *   of the first differing byte nor the length of a token leaks through timing.
 * - `checkScope` answers "may an agent holding this grant claim this name and these labels?".
 * - `createAgentAuthenticator` answers "who is this socket?": a bootstrap token or an agent's own
 *   credential (shared/identity/agent-credential.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IdentityConfig, ScopedAgentToken } from './config/types.js';
import { looksLikeCredential, UNSCOPED_GRANT, verifyCredential } from './identity/agent-credential.js';
import type { Labels } from './types.js';

/** What a valid token allows. Unscoped tokens allow any name and labels. */
export type TokenGrant =
  | { kind: 'unscoped' }
  | {
      kind: 'scoped';
      /** The `agent_token "<id>"` block, for logs and refusal reasons (never the secret). */
      id: string;
      allowed_labels: Record<string, string[]>;
      name_pattern: string | null;
      /** Every key of `allowed_labels` must be declared (the default); false: omitting one is allowed. */
      require_labels: boolean;
    };

export interface TokenConfig {
  agent_tokens: readonly string[];
  scoped_agent_tokens: readonly ScopedAgentToken[];
}

export type TokenVerifier = (presented: string | null) => TokenGrant | null;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The grant of an `agent_token "<id>"` block (never its secret). */
function scopedGrant(t: ScopedAgentToken): TokenGrant {
  return {
    kind: 'scoped',
    id: t.id,
    allowed_labels: t.allowed_labels,
    name_pattern: t.name_pattern,
    require_labels: t.require_labels,
  };
}

/** Precomputes the digests once; the returned function is called on every upgrade. */
export function createTokenVerifier(config: TokenConfig): TokenVerifier {
  const UNSCOPED: TokenGrant = { kind: 'unscoped' };
  const entries: Array<{ digest: Buffer; grant: TokenGrant }> = [];
  for (const token of config.agent_tokens) {
    if (token.length > 0) entries.push({ digest: digest(token), grant: UNSCOPED });
  }
  for (const t of config.scoped_agent_tokens) {
    if (t.token.length === 0) continue;
    entries.push({
      digest: digest(t.token),
      grant: scopedGrant(t),
    });
  }
  return (presented) => {
    // Hash even when nothing was presented so both paths cost the same.
    const candidate = digest(presented ?? '');
    let found: TokenGrant | null = null;
    for (const entry of entries) {
      // No early exit: the loop always visits every token.
      if (timingSafeEqual(candidate, entry.digest) && found === null && presented) found = entry.grant;
    }
    return found;
  };
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined | null): string | null {
  if (!header) return null;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}

/** Glob over agent names: `*` any run of characters, `?` exactly one; everything else literal. */
export function globMatch(pattern: string, value: string): boolean {
  // Iterative matcher with single backtrack point: linear-ish, no regex built from user input.
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === value[v])) {
      p++;
      v++;
    } else if (pc === '*') {
      star = p++;
      mark = v;
    } else if (star !== -1) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

export type ScopeDecision = { ok: true } | { ok: false; reason: string };

/**
 * May an agent holding `grant` register as `name` with `labels`?
 * A scoped token restricts the values of the label keys it lists, and requires them: an agent that
 * left a restricted key out would match every selector that does not mention the key (a token
 * limited to env=staging, registering without `env`, would receive role=web tasks of every env).
 * With `require_labels = false` on the block, an omitted key is allowed (the old behaviour). Keys
 * the token does not list are unrestricted.
 */
export function checkScope(grant: TokenGrant, name: string, labels: Labels): ScopeDecision {
  if (grant.kind === 'unscoped') return { ok: true };
  if (grant.name_pattern !== null && !globMatch(grant.name_pattern, name)) {
    return {
      ok: false,
      reason: `token "${grant.id}" does not allow agent name "${name}" (allowed: ${grant.name_pattern})`,
    };
  }
  for (const key of Object.keys(grant.allowed_labels).sort()) {
    if (!Object.hasOwn(labels, key)) {
      if (!grant.require_labels) continue;
      return {
        ok: false,
        reason: `token "${grant.id}" requires label ${key} (allowed: ${(grant.allowed_labels[key] ?? []).join(', ') || 'none'})`,
      };
    }
    const value = labels[key] as string;
    const allowed = grant.allowed_labels[key] ?? [];
    if (!allowed.includes(value)) {
      return {
        ok: false,
        reason: `token "${grant.id}" does not allow label ${key}=${value} (allowed: ${allowed.join(', ') || 'none'})`,
      };
    }
  }
  return { ok: true };
}

/** The grant id credentials and enrollment records use: the block's id, or `unscoped`. */
export function grantId(grant: TokenGrant): string {
  return grant.kind === 'unscoped' ? UNSCOPED_GRANT : grant.id;
}

/** What authenticated an agent socket. */
export type AgentAuth =
  | { kind: 'token'; grant: TokenGrant; grant_id: string }
  | {
      kind: 'credential';
      /** The grant named in the credential, as configured now. */
      grant: TokenGrant;
      grant_id: string;
      /** The agent name the credential is bound to. */
      name: string;
      generation: number;
      issued_at: number;
      fingerprint: string;
    };

export type AuthDecision =
  | { ok: true; auth: AgentAuth }
  | { ok: false; code: 'unauthorized' | 'credential_rejected'; error: string };

export interface AuthConfig extends TokenConfig {
  identity: Pick<IdentityConfig, 'generation' | 'revoked_before'>;
}

/**
 * The check before the upgrade: the bearer is a bootstrap token (constant-time TokenVerifier) or
 * a credential (constant-time MAC, then current generation, grant and `revoked_before`).
 * `key()` is null until the gateway has its identity key: every credential is rejected then.
 */
export function createAgentAuthenticator(
  config: AuthConfig,
  key: () => Buffer | null,
): (presented: string | null) => AuthDecision {
  const verifyToken = createTokenVerifier(config);
  const grants = new Map<string, TokenGrant>();
  if (config.agent_tokens.some((t) => t.length > 0)) grants.set(UNSCOPED_GRANT, { kind: 'unscoped' });
  for (const t of config.scoped_agent_tokens) {
    grants.set(t.id, scopedGrant(t));
  }
  const revoked = new Map(
    Object.entries(config.identity.revoked_before).map(([name, ms]) => [name, Math.ceil(ms / 1000)]),
  );
  const tokenAuth = new Map<TokenGrant, AgentAuth>();
  const policy = {
    generation: config.identity.generation,
    revoked_before: revoked,
    hasGrant: (g: string) => grants.has(g),
  };
  return (presented) => {
    if (presented !== null && looksLikeCredential(presented)) {
      const k = key();
      const verdict = k ? verifyCredential(k, presented, policy) : null;
      const grant = verdict?.ok ? grants.get(verdict.claims.grant) : undefined;
      if (!verdict?.ok || !grant) {
        const why = verdict && !verdict.ok ? verdict.reason : 'unavailable';
        return { ok: false, code: 'credential_rejected', error: `agent credential rejected (${why})` };
      }
      const { claims } = verdict;
      return {
        ok: true,
        auth: {
          kind: 'credential',
          grant,
          grant_id: claims.grant,
          name: claims.name,
          generation: claims.generation,
          issued_at: claims.issued_at,
          fingerprint: verdict.fingerprint,
        },
      };
    }
    const grant = verifyToken(presented);
    if (!grant) {
      const error = presented ? 'invalid agent token' : 'missing bearer token';
      return { ok: false, code: 'unauthorized', error };
    }
    // One shared object per grant: a socket's state stays small (the scale target is per agent).
    let auth = tokenAuth.get(grant);
    if (!auth) {
      auth = { kind: 'token', grant, grant_id: grantId(grant) };
      tokenAuth.set(grant, auth);
    }
    return { ok: true, auth };
  };
}
