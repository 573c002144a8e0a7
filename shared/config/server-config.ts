/** server.hcl → ServerConfig, every field and default as docs/configuration.md "server.hcl" lists them. */

import { errorMessage } from '../errors.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../liveness.js';
import { DRIFT_POLICIES, type DriftPolicy } from '../types.js';
import { AGENT_LIMITS_SCHEMA, readAgentLimits } from './agent-limits.js';
import { AGENT_TOKEN, checkTokens, optional, scopedToken, tokenList } from './agent-tokens.js';
import type { BodySchema, ConfigBodyReader } from './config-body-reader.js';
import type { Env } from './env.js';
import { HTTP_SCHEMA, readHttp } from './http-config.js';
import { readIdentity } from './identity-config.js';
import { parseListenAddress } from './listen-address.js';
import { LOG_SCHEMA, openConfig, readLog, throwIfErrors } from './open-config.js';
import { readRedisTopology } from './redis-topology.js';
import { readReplicaAckTimeout } from './replica-ack.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_WALK_BACK, MAX_WALK_BACK, type ServerConfig } from './types.js';

const SERVER_ATTRIBUTES = [
  'listen_agents',
  'listen_http',
  'agent_tokens',
  'api_tokens',
  'api_read_access',
  'heartbeat_interval',
  'shutdown_timeout',
];

const ROOT: BodySchema = {
  attributes: [],
  blocks: { server: 0 },
  hints: Object.fromEntries(
    [
      ...SERVER_ATTRIBUTES,
      'agent_token',
      'agent_limits',
      'http',
      'redis',
      'git',
      'tls',
      'drift',
      'event_store',
      'log',
      'identity',
    ].map((n) => [n, 'it belongs inside server { }']),
  ),
};
const SERVER: BodySchema = {
  attributes: SERVER_ATTRIBUTES,
  blocks: {
    agent_token: 1,
    agent_limits: 0,
    http: 0,
    redis: 0,
    git: 0,
    tls: 0,
    drift: 0,
    event_store: 0,
    log: 0,
    identity: 0,
  },
};
const REDIS: BodySchema = {
  attributes: [
    'url',
    'prefix',
    'cluster_nodes',
    'sentinels',
    'master_name',
    'sentinel_password',
    'replica_ack_timeout',
  ],
  blocks: {},
};
const GIT: BodySchema = {
  attributes: [
    'url',
    'branch',
    'poll_interval',
    'manifest_glob',
    'walk_back',
    'ssh_key_file',
    'basic_auth_user',
    'basic_auth_password',
    'webhook_secret',
  ],
  blocks: {},
};
const TLS: BodySchema = { attributes: ['enabled', 'cert_file', 'key_file'], blocks: {} };
const DRIFT: BodySchema = { attributes: ['policy', 'alert_webhook'], blocks: {} };
const EVENT_STORE: BodySchema = { attributes: ['backend'], blocks: { memory: 0, redis: 0 } };
const EVENT_MEMORY: BodySchema = { attributes: ['max_events_per_agent'], blocks: {} };
const EVENT_REDIS: BodySchema = { attributes: ['url', 'ttl'], blocks: {} };

export const EVENT_STORE_BACKENDS = ['redis', 'memory'] as const;
/**
 * Who may read the HTTP API, UI, Bull Board and metrics: anyone, API-token holders only, or
 * `auto` (open on a loopback-only listen_http, token otherwise: shared/config/read-access.ts).
 */
export const API_READ_ACCESS = ['auto', 'open', 'token'] as const;

/** Policies that send alerts need somewhere to send them. */
export function requiresAlertWebhook(policy: DriftPolicy): boolean {
  return policy === 'remediate_and_alert' || policy === 'alert_only';
}

function listen(r: ConfigBodyReader, name: string, fallback: string): string {
  const v = r.string(name);
  if (v === undefined) return fallback;
  try {
    parseListenAddress(v);
  } catch (err) {
    r.error(name, errorMessage(err), r.lineOf(name));
  }
  return v;
}

function redisUrl(r: ConfigBodyReader, name: string, fallback: string): string {
  const v = r.string(name);
  if (v !== undefined && !/^rediss?:\/\/./.test(v)) {
    r.error(name, `must be a redis:// or rediss:// URL, got ${JSON.stringify(v)}`, r.lineOf(name));
  }
  return v ?? fallback;
}

function httpUrl(r: ConfigBodyReader, name: string): string | null {
  const v = optional(r, name);
  if (v === null) return null;
  let ok = false;
  try {
    const u = new URL(v);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok) r.error(name, `must be an http:// or https:// URL, got ${JSON.stringify(v)}`, r.lineOf(name));
  return v;
}

function readRedis(s: ConfigBodyReader): ServerConfig['redis'] {
  const redis = s.block('redis', REDIS);
  const redisConfig = {
    url: redisUrl(redis, 'url', 'redis://127.0.0.1:6379'),
    prefix: redis.string('prefix') ?? 'fluke',
    ...readRedisTopology(redis),
    replica_ack_timeout_ms: readReplicaAckTimeout(redis),
  };
  if (!/^[A-Za-z0-9_.:-]+$/.test(redisConfig.prefix)) {
    redis.error(
      'prefix',
      'must be letters, digits and _ . : - (braces would break Redis Cluster hash tags)',
      redis.lineOf('prefix'),
    );
  }
  return redisConfig;
}

function readTls(s: ConfigBodyReader): ServerConfig['tls'] {
  const tls = s.block('tls', TLS);
  const tlsConfig = {
    enabled: tls.bool('enabled') ?? true,
    cert_file: optional(tls, 'cert_file'),
    key_file: optional(tls, 'key_file'),
  };
  if (tlsConfig.enabled) {
    for (const name of ['cert_file', 'key_file'] as const) {
      if (!tls.has(name)) {
        tls.error(
          name,
          'required when TLS is enabled (the default; set enabled = false only for local development)',
        );
      }
    }
  }
  return tlsConfig;
}

function readDrift(s: ConfigBodyReader): ServerConfig['drift'] {
  const drift = s.block('drift', DRIFT);
  const policy = drift.enumValue('policy', DRIFT_POLICIES) ?? 'remediate';
  const alertWebhook = httpUrl(drift, 'alert_webhook');
  if (requiresAlertWebhook(policy) && !drift.has('alert_webhook')) {
    drift.error('alert_webhook', `required when drift policy is "${policy}"`, drift.lineOf('policy'));
  }
  return { policy, alert_webhook: alertWebhook };
}

/** Reads server.hcl text. Throws ConfigError listing every problem. */
export async function parseServerConfig(
  file: string,
  source: string,
  env: Env = process.env,
): Promise<ServerConfig> {
  const { ctx, root } = await openConfig(file, source, env, ROOT);
  const s = root.block('server', SERVER);
  if (!s.present) {
    s.error('', 'missing required block: server { ... }');
    throwIfErrors(ctx);
  }

  const agentTokens = tokenList(s, 'agent_tokens');
  const scoped = s
    .labeledBlocks('agent_token', AGENT_TOKEN)
    .map(({ label, reader }) => ({ token: scopedToken(label, reader), reader }));
  checkTokens(s, agentTokens, scoped);

  const redisConfig = readRedis(s);

  const git = s.block('git', GIT);
  const basicAuthUser = optional(git, 'basic_auth_user');
  const basicAuthPassword = optional(git, 'basic_auth_password');
  if (basicAuthPassword !== null && basicAuthUser === null) {
    git.error(
      'basic_auth_user',
      'required when basic_auth_password is set',
      git.lineOf('basic_auth_password'),
    );
  }
  const manifestGlob = git.string('manifest_glob') ?? '**/*.fluke.hcl';
  if (manifestGlob === '') git.error('manifest_glob', 'must not be empty', git.lineOf('manifest_glob'));

  const tlsConfig = readTls(s);

  const drift = readDrift(s);

  const events = s.block('event_store', EVENT_STORE);
  const eventsRedis = events.block('redis', EVENT_REDIS);

  const config: ServerConfig = {
    source: file,
    listen_agents: listen(s, 'listen_agents', ':7070'),
    listen_http: listen(s, 'listen_http', ':7071'),
    agent_tokens: agentTokens ?? [],
    scoped_agent_tokens: scoped.map((x) => x.token),
    api_tokens: tokenList(s, 'api_tokens') ?? [],
    api_read_access: s.enumValue('api_read_access', API_READ_ACCESS) ?? 'auto',
    http: readHttp(s.block('http', HTTP_SCHEMA)),
    heartbeat_interval_ms: s.duration('heartbeat_interval') ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    agent_limits: readAgentLimits(s.block('agent_limits', AGENT_LIMITS_SCHEMA)),
    shutdown_timeout_ms: s.duration('shutdown_timeout') ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    redis: redisConfig,
    git: {
      url: git.requiredString('url', git.present ? 'required' : 'required: add git { url = "..." }') ?? '',
      branch: git.string('branch') ?? 'main',
      poll_interval_ms: git.duration('poll_interval') ?? 60_000,
      manifest_glob: manifestGlob,
      walk_back: git.integer('walk_back', 0, MAX_WALK_BACK) ?? DEFAULT_WALK_BACK,
      ssh_key_file: optional(git, 'ssh_key_file'),
      basic_auth_user: basicAuthUser,
      basic_auth_password: basicAuthPassword,
      webhook_secret: optional(git, 'webhook_secret'),
    },
    tls: tlsConfig,
    drift,
    event_store: {
      backend: events.enumValue('backend', EVENT_STORE_BACKENDS) ?? 'redis',
      memory: {
        max_events_per_agent:
          events.block('memory', EVENT_MEMORY).integer('max_events_per_agent', 1, 1_000_000) ?? 100,
      },
      redis: {
        url: redisUrl(eventsRedis, 'url', redisConfig.url),
        ttl_ms: eventsRedis.duration('ttl') ?? 168 * 3_600_000,
      },
    },
    log: readLog(s.block('log', LOG_SCHEMA)),
    identity: readIdentity(s),
  };
  if (config.git.branch === '') git.error('branch', 'must not be empty', git.lineOf('branch'));
  throwIfErrors(ctx);
  return config;
}
