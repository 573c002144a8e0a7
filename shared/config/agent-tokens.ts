/**
 * Agent bootstrap tokens in server.hcl: the plain `agent_tokens` list and the scoped
 * `agent_token "<id>" { }` blocks, with the rules that keep every token's grant unambiguous.
 */
import { isLabelKey } from '../agent-rules.js';
import { UNSCOPED_GRANT } from '../identity/agent-credential.js';
import type { BodySchema, ConfigBodyReader } from './config-body-reader.js';
import type { ScopedAgentToken } from './types.js';

export const AGENT_TOKEN: BodySchema = {
  attributes: ['token', 'allowed_labels', 'name_pattern', 'require_labels'],
  blocks: {},
};

/** A secret or path that, when given, must not be empty (an empty env var is a likely mistake). */
export function optional(r: ConfigBodyReader, name: string): string | null {
  const v = r.string(name);
  if (v === '') r.error(name, 'must not be empty (leave it out instead)', r.lineOf(name));
  return v || null;
}

export function tokenList(r: ConfigBodyReader, name: string): string[] | undefined {
  const list = r.stringList(name);
  if (list?.some((t) => t === '')) r.error(name, 'tokens must not be empty', r.lineOf(name));
  return list;
}

export function scopedToken(id: string, r: ConfigBodyReader): ScopedAgentToken {
  if (id === UNSCOPED_GRANT) {
    r.error('', `"${UNSCOPED_GRANT}" is reserved (it names the plain agent_tokens); pick another id`);
  }
  const pattern = optional(r, 'name_pattern');
  if (pattern !== null && /[[\]{}!]/.test(pattern)) {
    r.error('name_pattern', 'only * and ? are special in a name pattern', r.lineOf('name_pattern'));
  }
  const allowed = r.stringListMap('allowed_labels') ?? {};
  const badKey = Object.keys(allowed).find((key) => !isLabelKey(key));
  if (badKey !== undefined) {
    r.error(
      'allowed_labels',
      `key ${JSON.stringify(badKey)} is not a valid label key`,
      r.lineOf('allowed_labels'),
    );
  }
  return {
    id,
    token: r.requiredString('token') ?? '',
    allowed_labels: allowed,
    name_pattern: pattern,
    require_labels: r.bool('require_labels') ?? true,
  };
}

export function checkTokens(
  s: ConfigBodyReader,
  agentTokens: string[] | undefined,
  scoped: { token: ScopedAgentToken; reader: ConfigBodyReader }[],
): void {
  // A present but mistyped list already has its own error.
  const mistyped = s.has('agent_tokens') && agentTokens === undefined;
  if (!mistyped && (agentTokens ?? []).length === 0 && scoped.length === 0) {
    s.error(
      'agent_tokens',
      'required: list at least one token, or add an agent_token "<id>" { } block',
      s.lineOf('agent_tokens'),
    );
  }
  const owner = new Map<string, string>((agentTokens ?? []).map((t) => [t, 'agent_tokens']));
  for (const { token: t, reader } of scoped) {
    if (!t.token) continue;
    const other = owner.get(t.token);
    // One token with two scopes would make the scope depend on lookup order.
    if (other) reader.error('token', `the same token is also in ${other}`, reader.lineOf('token'));
    else owner.set(t.token, `agent_token "${t.id}"`);
  }
}
