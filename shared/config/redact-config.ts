import { redactSecrets } from '../redact.js';
import type { AgentConfig, ServerConfig } from './types.js';

export const REDACTED = '[redacted]';

/** Hides the credentials in `redis://user:pass@host`, `https://<token>@host/…` (shared/redact.ts). */
function redactUrlPassword(url: string): string {
  return redactSecrets(url);
}

/** Webhook URLs often carry their secret in the path (Slack, Teams): keep only the origin. */
function redactWebhook(url: string | null): string | null {
  if (url === null) return null;
  try {
    const u = new URL(url);
    return u.pathname === '/' && !u.search && !u.username ? url : `${u.origin}/${REDACTED}`;
  } catch {
    return REDACTED;
  }
}

const secret = (v: string | null): string | null => (v === null ? null : REDACTED);

/** A copy that is safe to log: tokens, passwords and secrets replaced by "[redacted]". */
export function redactConfig(cfg: ServerConfig): ServerConfig;
export function redactConfig(cfg: AgentConfig): AgentConfig;
export function redactConfig(cfg: ServerConfig | AgentConfig): ServerConfig | AgentConfig {
  if ('server_url' in cfg) {
    return {
      ...cfg,
      token: REDACTED,
      labels: { ...cfg.labels },
      tls: { ...cfg.tls },
      execution: { ...cfg.execution },
      log: { ...cfg.log },
    };
  }
  return {
    ...cfg,
    agent_tokens: cfg.agent_tokens.map(() => REDACTED),
    scoped_agent_tokens: cfg.scoped_agent_tokens.map((t) => ({
      ...t,
      token: REDACTED,
      allowed_labels: Object.fromEntries(Object.entries(t.allowed_labels).map(([k, v]) => [k, [...v]])),
    })),
    api_tokens: cfg.api_tokens.map(() => REDACTED),
    http: {
      allowed_hosts: cfg.http.allowed_hosts && [...cfg.http.allowed_hosts],
      trusted_proxies: [...cfg.http.trusted_proxies],
    },
    redis: {
      ...cfg.redis,
      url: redactUrlPassword(cfg.redis.url),
      cluster_nodes: cfg.redis.cluster_nodes.map(redactUrlPassword),
      sentinels: [...cfg.redis.sentinels],
      sentinel_password: secret(cfg.redis.sentinel_password),
    },
    git: {
      ...cfg.git,
      url: redactUrlPassword(cfg.git.url),
      // The user is a secret too: token-as-user schemes put the whole credential there.
      basic_auth_user: secret(cfg.git.basic_auth_user),
      basic_auth_password: secret(cfg.git.basic_auth_password),
      webhook_secret: secret(cfg.git.webhook_secret),
    },
    tls: { ...cfg.tls },
    drift: { ...cfg.drift, alert_webhook: redactWebhook(cfg.drift.alert_webhook) },
    event_store: {
      ...cfg.event_store,
      memory: { ...cfg.event_store.memory },
      redis: { ...cfg.event_store.redis, url: redactUrlPassword(cfg.event_store.redis.url) },
    },
    log: { ...cfg.log },
    identity: {
      ...cfg.identity,
      key: secret(cfg.identity.key),
      revoked_before: { ...cfg.identity.revoked_before },
    },
  };
}
