/**
 * The typed result of loading server.hcl / agent.hcl (see docs/configuration.md).
 * Durations are already converted to milliseconds; every default is filled in.
 * No raw JSON travels past the loader: the rest of the code sees only these types.
 */
import type { DriftPolicy, Labels } from '../types.js';
import type { AgentLimitsConfig } from './agent-limits.js';

/** The default of `server.shutdown_timeout` and `agent.shutdown_timeout`. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** `server.git.walk_back`: how far back past a bad head the state is looked for (docs/git.md). */
export const DEFAULT_WALK_BACK = 100;
/** A commit that changed manifests costs two git processes (~30-110 ms): 1000 stays well inside the 10-minute poll lock. */
export const MAX_WALK_BACK = 1000;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';

export interface LogConfig {
  level: LogLevel;
  format: LogFormat;
}

export interface ScopedAgentToken {
  id: string;
  token: string;
  /** label key → allowed values; an agent must not claim any other value for these keys. */
  allowed_labels: Record<string, string[]>;
  /** glob over the agent name (`*` and `?`), or null for any name. */
  name_pattern: string | null;
  /** An agent must declare every key of `allowed_labels` (default true). */
  require_labels: boolean;
}

/** `server.identity`: per-agent credentials and who holds a name (docs/configuration.md). */
export interface IdentityConfig {
  /** HMAC key text (≥ 32 characters), or null: a random key kept in Redis. */
  key: string | null;
  /** Whole number ≥ 1; bump it to revoke every credential. */
  generation: number;
  /** Agent name → ms instant: credentials of that agent issued before it are refused. */
  revoked_before: Record<string, number>;
  /** How long an enrolled name stays held without any registration. */
  enrollment_ttl_ms: number;
  /** Agents that do not speak `identity` may still register with a bootstrap token. */
  legacy_agents: boolean;
}

/** `server.redis`: one server (url), a Cluster (cluster_nodes) or a Sentinel-watched master. */
export interface RedisConfig {
  url: string;
  prefix: string;
  /** Seed nodes of a Redis Cluster (redis:// or rediss:// URLs); empty: not a cluster. */
  cluster_nodes: string[];
  /** Sentinels (host:port) watching `master_name`; empty: no Sentinel. */
  sentinels: string[];
  master_name: string | null;
  sentinel_password: string | null;
  /** Gateways wait this long for a replica to confirm results before acking (0: off); absent: 1 s. */
  replica_ack_timeout_ms?: number;
}

export interface ServerConfig {
  /** The file it came from (absolute), for messages. */
  source: string;
  listen_agents: string;
  listen_http: string;
  agent_tokens: string[];
  scoped_agent_tokens: ScopedAgentToken[];
  api_tokens: string[];
  /**
   * `open`: GET routes, UI, Bull Board and metrics need no token; `token`: they need an API token;
   * `auto` (default): `open` when listen_http is loopback only, else `token` (resolveReadAccess).
   */
  api_read_access: 'auto' | 'open' | 'token';
  http: {
    /** Host names the console answers to (null: the default, localhost and listen_http's host). */
    allowed_hosts: string[] | null;
    /**
     * Balancers (IP addresses, CIDR ranges) whose PROXY v2 header or X-Forwarded-For names the
     * client on both listeners (shared/client-address.ts); empty (default): every peer is a client.
     */
    trusted_proxies: string[];
  };
  heartbeat_interval_ms: number;
  /** What one agent may declare and how fast agents may register (shared/config/agent-limits.ts). */
  agent_limits: AgentLimitsConfig;
  /** After SIGTERM/SIGINT the process exits within this, even with Redis unreachable. */
  shutdown_timeout_ms: number;
  redis: RedisConfig;
  git: {
    url: string;
    branch: string;
    poll_interval_ms: number;
    manifest_glob: string;
    /** Commits before a bad head the reconciler may walk back when no state is stored (0: never). */
    walk_back: number;
    ssh_key_file: string | null;
    basic_auth_user: string | null;
    basic_auth_password: string | null;
    webhook_secret: string | null;
  };
  tls: { enabled: boolean; cert_file: string | null; key_file: string | null };
  drift: { policy: DriftPolicy; alert_webhook: string | null };
  event_store: {
    backend: 'redis' | 'memory';
    memory: { max_events_per_agent: number };
    redis: { url: string; ttl_ms: number };
  };
  log: LogConfig;
  identity: IdentityConfig;
}

export interface AgentConfig {
  source: string;
  server_url: string;
  /** `ws://` to a host that is not loopback is refused unless this is true. */
  allow_insecure: boolean;
  token: string;
  /** Where the agent keeps its own credential (mode 0600), once enrolled. */
  credential_file: string;
  name: string;
  labels: Labels;
  tls: { ca_file: string | null; insecure_skip_verify: boolean };
  execution: { default_shell: string; command_timeout_ms: number };
  /** After SIGTERM/SIGINT the agent exits within this, its drain of running commands included. */
  shutdown_timeout_ms: number;
  log: LogConfig;
}

/** Split "host:port" / ":port" / "[::1]:port" into parts; an empty host means all interfaces. */
export interface ListenAddress {
  host: string;
  port: number;
}
