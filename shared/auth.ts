/**
 * Agent authentication and authorisation: pure decisions, no I/O.
 *
 * - `createTokenVerifier` answers "which token is this?" in constant time: every configured token is
 *   compared (no early exit) and the comparison runs over SHA-256 digests, so neither the position
 *   of the first differing byte nor the length of a token leaks through timing.
 * - `checkScope` answers "may an agent holding this grant claim this name and these labels?".
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ScopedAgentToken } from './config/types.js';
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
      grant: {
        kind: 'scoped',
        id: t.id,
        allowed_labels: t.allowed_labels,
        name_pattern: t.name_pattern,
        require_labels: t.require_labels,
      },
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
