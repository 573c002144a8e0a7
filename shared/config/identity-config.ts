/** `server { identity { } }` → IdentityConfig, with the defaults docs/configuration.md lists. */
import type { BodySchema, ConfigBodyReader } from './config-body-reader.js';
import type { IdentityConfig } from './types.js';

const IDENTITY: BodySchema = {
  attributes: ['key', 'generation', 'revoked_before', 'enrollment_ttl', 'legacy_agents'],
  blocks: {},
};

/** The shortest `identity.key` accepted: shorter text is too easy to guess. */
export const MIN_IDENTITY_KEY_LENGTH = 32;
/** Default `identity.enrollment_ttl`: 30 days. */
export const DEFAULT_ENROLLMENT_TTL_MS = 720 * 3_600_000;

/** What a server.hcl without an `identity { }` block gets. */
export const DEFAULT_IDENTITY: IdentityConfig = {
  key: null,
  generation: 1,
  revoked_before: {},
  enrollment_ttl_ms: DEFAULT_ENROLLMENT_TTL_MS,
  legacy_agents: true,
};

/** `2026-12-05T18:00:00Z`-style instants only (a zone is required: no local-time guesses). */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

export function readIdentity(s: ConfigBodyReader): IdentityConfig {
  const r = s.block('identity', IDENTITY);
  const key = r.string('key');
  if (key !== undefined && key.length < MIN_IDENTITY_KEY_LENGTH) {
    r.error(
      'key',
      `must be at least ${MIN_IDENTITY_KEY_LENGTH} characters (got ${key.length}); e.g. openssl rand -base64 48`,
      r.lineOf('key'),
    );
  }
  const revoked: Record<string, number> = {};
  for (const [name, text] of Object.entries(r.stringMap('revoked_before') ?? {})) {
    const ms = INSTANT.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(ms)) {
      r.error(
        'revoked_before',
        `${JSON.stringify(name)}: must be an RFC 3339 instant like "2026-12-05T18:00:00Z", got ${JSON.stringify(text)}`,
        r.lineOf('revoked_before'),
      );
      continue;
    }
    revoked[name] = ms;
  }
  return {
    key: key || null,
    generation: r.integer('generation', 1) ?? 1,
    revoked_before: revoked,
    enrollment_ttl_ms: r.duration('enrollment_ttl') ?? DEFAULT_ENROLLMENT_TTL_MS,
    legacy_agents: r.bool('legacy_agents') ?? true,
  };
}
