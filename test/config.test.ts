// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL/env references, not JS templates
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_AGENT_LIMITS } from '../shared/config/agent-limits.js';
import {
  ConfigError,
  loadAgentConfig,
  loadServerConfig,
  parseAgentConfig,
  parseListenAddress,
  parseServerConfig,
  REDACTED,
  redactConfig,
  requiresAlertWebhook,
  substituteEnv,
} from '../shared/config/load.js';
import { SINGLE_REDIS } from '../shared/config/redis-topology.js';
import type { AgentConfig, ServerConfig } from '../shared/config/types.js';

const FULL_SERVER = `# every field
server {
  listen_agents      = "0.0.0.0:8070"
  listen_http        = "[::1]:8071"
  agent_tokens       = ["$AGENT_TOKEN", "plain-token"]
  api_tokens         = ["\${API_TOKEN}"]
  heartbeat_interval = "5s"
  shutdown_timeout   = "20s"

  agent_token "staging" {
    token          = "stg-token"
    allowed_labels = { env = ["staging"], role = ["web", "db"] }
    name_pattern   = "stg-*"
  }
  agent_token "any" {
    token          = "any-token"
    require_labels = false
  }

  agent_limits {
    max_labels                 = 32
    max_label_bytes            = 4096
    max_known_agents           = 5000
    address_registration_rate  = 50
    address_registration_burst = 200
    grant_registration_rate    = 100
    grant_registration_burst   = 1000
    failed_upgrade_rate        = 2
    failed_upgrade_burst       = 5
    max_tracked_addresses      = 1000
  }

  redis {
    url    = "redis://:pw@redis:6379/1"
    prefix = "fluke-prod"
  }
  git {
    url                 = "https://git.example.com/ops/desired.git"
    branch              = "release"
    poll_interval       = "1m30s"
    manifest_glob       = "hosts/**/*.hcl"
    walk_back           = 25
    ssh_key_file        = "/etc/fluke/id_ed25519"
    basic_auth_user     = "fluke"
    basic_auth_password = "$GIT_PASSWORD"
    webhook_secret      = "hook-$$ecret"
  }
  tls {
    enabled   = true
    cert_file = "/etc/fluke/tls.crt"
    key_file  = "/etc/fluke/tls.key"
  }
  drift {
    policy        = "remediate_and_alert"
    alert_webhook = "https://hooks.example.com/services/T0/B0/XYZ"
  }
  event_store {
    backend = "memory"
    memory { max_events_per_agent = 500 }
    redis {
      url = "rediss://events:6380"
      ttl = "72h"
    }
  }
  log {
    level  = "debug"
    format = "pretty"
  }
  identity {
    key            = "$IDENTITY_KEY"
    generation     = 3
    revoked_before = { "web-3" = "2026-12-05T18:00:00Z" }
    enrollment_ttl = "48h"
    legacy_agents  = false
  }
}
`;

const ENV = {
  AGENT_TOKEN: 'agent-from-env',
  API_TOKEN: 'api-from-env',
  GIT_PASSWORD: 'pw-from-env',
  IDENTITY_KEY: 'an-identity-key-of-at-least-32-characters',
};

t.test('full server.hcl: every field', async (t) => {
  const cfg = await parseServerConfig('/etc/fluke/server.hcl', FULL_SERVER, ENV);
  t.same(cfg, {
    source: '/etc/fluke/server.hcl',
    listen_agents: '0.0.0.0:8070',
    listen_http: '[::1]:8071',
    agent_tokens: ['agent-from-env', 'plain-token'],
    scoped_agent_tokens: [
      {
        id: 'staging',
        token: 'stg-token',
        allowed_labels: { env: ['staging'], role: ['web', 'db'] },
        name_pattern: 'stg-*',
        require_labels: true,
      },
      { id: 'any', token: 'any-token', allowed_labels: {}, name_pattern: null, require_labels: false },
    ],
    api_tokens: ['api-from-env'],
    api_read_access: 'auto',
    http: { allowed_hosts: null, trusted_proxies: [] },
    heartbeat_interval_ms: 5000,
    agent_limits: {
      max_labels: 32,
      max_label_bytes: 4096,
      max_known_agents: 5000,
      address_registration_rate: 50,
      address_registration_burst: 200,
      grant_registration_rate: 100,
      grant_registration_burst: 1000,
      failed_upgrade_rate: 2,
      failed_upgrade_burst: 5,
      max_tracked_addresses: 1000,
    },
    shutdown_timeout_ms: 20_000,
    redis: {
      url: 'redis://:pw@redis:6379/1',
      prefix: 'fluke-prod',
      ...SINGLE_REDIS,
      replica_ack_timeout_ms: 1000,
    },
    git: {
      url: 'https://git.example.com/ops/desired.git',
      branch: 'release',
      poll_interval_ms: 90_000,
      manifest_glob: 'hosts/**/*.hcl',
      walk_back: 25,
      ssh_key_file: '/etc/fluke/id_ed25519',
      basic_auth_user: 'fluke',
      basic_auth_password: 'pw-from-env',
      webhook_secret: 'hook-$ecret',
    },
    tls: { enabled: true, cert_file: '/etc/fluke/tls.crt', key_file: '/etc/fluke/tls.key' },
    drift: { policy: 'remediate_and_alert', alert_webhook: 'https://hooks.example.com/services/T0/B0/XYZ' },
    event_store: {
      backend: 'memory',
      memory: { max_events_per_agent: 500 },
      redis: { url: 'rediss://events:6380', ttl_ms: 72 * 3_600_000 },
    },
    log: { level: 'debug', format: 'pretty' },
    identity: {
      key: 'an-identity-key-of-at-least-32-characters',
      generation: 3,
      revoked_before: { 'web-3': Date.parse('2026-12-05T18:00:00Z') },
      enrollment_ttl_ms: 48 * 3_600_000,
      legacy_agents: false,
    },
  } satisfies ServerConfig);
});

t.test('minimal server.hcl: defaults', async (t) => {
  const src = 'server {\n  agent_tokens = ["t"]\n  git { url = "/srv/repo" }\n  tls { enabled = false }\n}\n';
  const cfg = await parseServerConfig('s.hcl', src, {});
  t.same(cfg, {
    source: 's.hcl',
    listen_agents: ':7070',
    listen_http: ':7071',
    agent_tokens: ['t'],
    scoped_agent_tokens: [],
    api_tokens: [],
    api_read_access: 'auto',
    http: { allowed_hosts: null, trusted_proxies: [] },
    heartbeat_interval_ms: 10_000,
    agent_limits: DEFAULT_AGENT_LIMITS,
    shutdown_timeout_ms: 10_000,
    redis: { url: 'redis://127.0.0.1:6379', prefix: 'fluke', ...SINGLE_REDIS, replica_ack_timeout_ms: 1000 },
    git: {
      url: '/srv/repo',
      branch: 'main',
      poll_interval_ms: 60_000,
      manifest_glob: '**/*.fluke.hcl',
      walk_back: 100,
      ssh_key_file: null,
      basic_auth_user: null,
      basic_auth_password: null,
      webhook_secret: null,
    },
    tls: { enabled: false, cert_file: null, key_file: null },
    drift: { policy: 'remediate', alert_webhook: null },
    event_store: {
      backend: 'redis',
      memory: { max_events_per_agent: 100 },
      redis: { url: 'redis://127.0.0.1:6379', ttl_ms: 168 * 3_600_000 },
    },
    log: { level: 'info', format: 'json' },
    identity: {
      key: null,
      generation: 1,
      revoked_before: {},
      enrollment_ttl_ms: 720 * 3_600_000,
      legacy_agents: true,
    },
  } satisfies ServerConfig);

  const custom = await parseServerConfig(
    's.hcl',
    'server {\n  agent_token "a" { token = "x" }\n  redis { url = "redis://r:1" }\n  git { url = "/r" }\n  tls { enabled = false }\n}\n',
    {},
  );
  t.equal(custom.event_store.redis.url, 'redis://r:1', 'event_store.redis.url defaults to redis.url');
  t.same(custom.agent_tokens, [], 'agent_token blocks alone are enough');
});

const FULL_AGENT = `agent {
  server_url = "wss://fluke.example.com:7070"
  token      = "\${FLUKE_AGENT_TOKEN}"
  name       = "web-01"
  labels     = { role = "web", env = "$ENV_NAME", zone = "eu-1" }
  shutdown_timeout = "15s"
  tls {
    ca_file              = "/etc/fluke/ca.pem"
    insecure_skip_verify = true
  }
  execution {
    default_shell   = "/bin/sh"
    command_timeout = "90s"
  }
  log {
    level  = "warn"
    format = "pretty"
  }
}
`;

t.test('full agent.hcl: every field', async (t) => {
  const cfg = await parseAgentConfig(
    'a.hcl',
    FULL_AGENT,
    { FLUKE_AGENT_TOKEN: 'tok', ENV_NAME: 'production' },
    'h',
  );
  t.same(cfg, {
    source: 'a.hcl',
    server_url: 'wss://fluke.example.com:7070',
    allow_insecure: false,
    token: 'tok',
    credential_file: 'a.credential',
    name: 'web-01',
    labels: { role: 'web', env: 'production', zone: 'eu-1' },
    tls: { ca_file: '/etc/fluke/ca.pem', insecure_skip_verify: true },
    execution: { default_shell: '/bin/sh', command_timeout_ms: 90_000 },
    shutdown_timeout_ms: 15_000,
    log: { level: 'warn', format: 'pretty' },
  } satisfies AgentConfig);
});

t.test('minimal agent.hcl: defaults, name from the host', async (t) => {
  const cfg = await parseAgentConfig(
    'a.hcl',
    'agent {\n  server_url = "ws://127.0.0.1:7070"\n  token = "t"\n}\n',
    {},
    'box-7',
  );
  t.same(cfg, {
    source: 'a.hcl',
    server_url: 'ws://127.0.0.1:7070',
    allow_insecure: false,
    token: 't',
    credential_file: 'a.credential',
    name: 'box-7',
    labels: {},
    tls: { ca_file: null, insecure_skip_verify: false },
    execution: { default_shell: '/bin/bash', command_timeout_ms: 300_000 },
    shutdown_timeout_ms: 10_000,
    log: { level: 'info', format: 'json' },
  } satisfies AgentConfig);
});

t.test('environment substitution', async (t) => {
  const env = { A: 'alpha', B: 'beta', EMPTY: '' };
  t.same(substituteEnv('$A-${B}', env), { ok: true, value: 'alpha-beta' });
  t.same(substituteEnv('$$A $${B} 5$ $ %%{x}', env), { ok: true, value: '$A ${B} 5$ $ %{x}' });
  t.same(substituteEnv('[$EMPTY]', env), { ok: true, value: '[]' });
  t.same(substituteEnv('$A_B', env), { ok: false, problems: ['environment variable A_B is not set'] });
  t.match(substituteEnv('${lower(A)}', env), { ok: false, problems: [/only environment references/] });
  t.match(substituteEnv('%{ if x }y%{ endif }', env), { ok: false, problems: [/template directives/] });

  const src = `agent {
  server_url = "ws://$HOST:7070"
  allow_insecure = true
  token      = "$$\${TOKEN}$$"
  name       = "n-\${SUFFIX}"
  labels     = { dollar = "$$HOME", both = "$A/\${B}", literal = "$\${A}" }
  execution {
    default_shell = <<EOT
$SHELL_PATH
EOT
  }
}
`;
  const cfg = await parseAgentConfig(
    'a.hcl',
    src,
    { HOST: 'h.example', TOKEN: 'tk', SUFFIX: 'x', A: 'a', B: 'b', SHELL_PATH: '/bin/zsh' },
    'h',
  );
  t.equal(cfg.server_url, 'ws://h.example:7070');
  t.equal(cfg.token, '$tk$');
  t.equal(cfg.name, 'n-x');
  t.same(cfg.labels, { dollar: '$HOME', both: 'a/b', literal: '${A}' });
  t.equal(cfg.execution.default_shell, '/bin/zsh\n', 'heredocs are substituted too');

  const lists = await parseServerConfig(
    's.hcl',
    'server {\n  agent_tokens = ["$T1", "${T2}"]\n  agent_token "x" {\n    token = "$T3"\n    allowed_labels = { env = ["$E1", "${E2}"] }\n  }\n  git { url = "$REPO" }\n  tls { enabled = "${TLS}" }\n}\n',
    { T1: '1', T2: '2', T3: '3', E1: 'e1', E2: 'e2', REPO: '/r', TLS: 'false' },
  );
  t.same(lists.agent_tokens, ['1', '2']);
  t.same(lists.scoped_agent_tokens[0]?.allowed_labels, { env: ['e1', 'e2'] });
  t.equal(lists.tls.enabled, false, 'a bool may come from the environment');

  const err = await parseServerConfig(
    'env.hcl',
    'server {\n  agent_tokens = ["ok", "$MISSING_ONE"]\n  git {\n    url = "${MISSING_TWO}"\n  }\n  tls { enabled = false }\n}\n',
    {},
  ).catch((e: unknown) => e);
  t.type(err, ConfigError);
  const e = err as ConfigError;
  t.same(
    e.errors.map((x) => [x.line, x.field, x.message]),
    [
      [2, 'server.agent_tokens', 'environment variable MISSING_ONE is not set'],
      [4, 'server.git.url', 'environment variable MISSING_TWO is not set'],
    ],
  );
  t.match(e.message, 'env.hcl:2: server.agent_tokens: environment variable MISSING_ONE is not set');
});

/** [description, file kind, source, expected message, expected line] */
const INVALID: [string, 'server' | 'agent', string, RegExp, number][] = [
  ['syntax error', 'server', 'server {\n  git { url = "x }\n}\n', /syntax error: .*string/i, 2],
  ['unclosed block', 'agent', 'agent {\n  token = "t"\n', /syntax error: .*(Unclosed|unclosed)/, 1],
  ['missing server block', 'server', '# nothing here\n', /server: missing required block/, 1],
  [
    'unknown attribute',
    'server',
    'server {\n  agent_tokens = ["t"]\n  listen = ":1"\n}\n',
    /server\.listen: unknown attribute/,
    3,
  ],
  [
    'unknown block',
    'server',
    'server {\n  agent_tokens = ["t"]\n  gitt {\n  }\n}\n',
    /server\.gitt: unknown block/,
    3,
  ],
  [
    'top-level attribute with hint',
    'agent',
    'token = "t"\nagent {}\n',
    /token: unknown attribute \(it belongs inside agent/,
    1,
  ],
  [
    'agent_token outside server',
    'server',
    'server {\n  agent_tokens = ["t"]\n}\nagent_token "x" { token = "y" }\n',
    /agent_token: unknown block \(it belongs inside server/,
    4,
  ],
  [
    'block used as attribute',
    'server',
    'server {\n  agent_tokens = ["t"]\n  tls = { enabled = false }\n}\n',
    /server\.tls: unknown attribute; tls is a block/,
    3,
  ],
  [
    'number for a string',
    'server',
    'server {\n  agent_tokens = ["t"]\n  git {\n    branch = 5\n  }\n}\n',
    /server\.git\.branch: must be a string, got a number/,
    4,
  ],
  [
    'string for a list',
    'server',
    'server {\n\n  agent_tokens = "t"\n}\n',
    /server\.agent_tokens: must be a list of strings, got a string/,
    3,
  ],
  [
    'number in a token list',
    'server',
    'server {\n  api_tokens = ["a", 2]\n}\n',
    /server\.api_tokens: item\[1\] must be a string, got a number/,
    2,
  ],
  [
    'string for a bool',
    'agent',
    'agent {\n  tls {\n    insecure_skip_verify = "yes"\n  }\n}\n',
    /agent\.tls\.insecure_skip_verify: must be a bool/,
    3,
  ],
  [
    'label value not a string',
    'agent',
    'agent {\n  labels = { n = 1 }\n}\n',
    /agent\.labels: value of "n" must be a string, got a number/,
    2,
  ],
  [
    'bad drift policy',
    'server',
    'server {\n  drift {\n    policy = "fix_it"\n  }\n}\n',
    /server\.drift\.policy: must be one of "remediate", "remediate_and_alert", "alert_only", got "fix_it"/,
    3,
  ],
  [
    'bad log level',
    'agent',
    'agent {\n  log { level = "trace" }\n}\n',
    /agent\.log\.level: must be one of "debug"/,
    2,
  ],
  [
    'bad log format',
    'server',
    'server {\n  log {\n    format = "text"\n  }\n}\n',
    /server\.log\.format: must be one of "json", "pretty", got "text"/,
    3,
  ],
  [
    'bad event store backend',
    'server',
    'server {\n  event_store {\n    backend = "postgres"\n  }\n}\n',
    /server\.event_store\.backend: must be one of "redis", "memory"/,
    3,
  ],
  [
    'missing agent_tokens',
    'server',
    'server {\n  api_tokens = []\n}\n',
    /server\.agent_tokens: required: list at least one token, or add an agent_token/,
    1,
  ],
  ['empty agent_tokens', 'server', 'server {\n  agent_tokens = []\n}\n', /server\.agent_tokens: required/, 2],
  [
    'missing git.url',
    'server',
    'server {\n  agent_tokens = ["t"]\n  git {\n    branch = "main"\n  }\n}\n',
    /server\.git\.url: required$/m,
    3,
  ],
  [
    'missing git block',
    'server',
    'server {\n  agent_tokens = ["t"]\n}\n',
    /server\.git\.url: required: add git/,
    1,
  ],
  [
    'bad duration',
    'server',
    'server {\n  git {\n    poll_interval = "1 minute"\n  }\n}\n',
    /server\.git\.poll_interval: invalid duration "1 minute"/,
    3,
  ],
  [
    'duration without unit',
    'agent',
    'agent {\n  execution {\n    command_timeout = "300"\n  }\n}\n',
    /agent\.execution\.command_timeout: invalid duration "300": missing or unknown unit/,
    3,
  ],
  [
    'sub-millisecond duration',
    'server',
    'server {\n  heartbeat_interval = "500us"\n}\n',
    /server\.heartbeat_interval: invalid duration "500us": not a whole number of milliseconds/,
    2,
  ],
  [
    'fractional milliseconds',
    'agent',
    'agent {\n  execution {\n    command_timeout = "1.5ms"\n  }\n}\n',
    /agent\.execution\.command_timeout: invalid duration "1.5ms": not a whole number of milliseconds/,
    3,
  ],
  [
    'zero duration',
    'server',
    'server {\n  heartbeat_interval = "0s"\n}\n',
    /server\.heartbeat_interval: must be greater than zero/,
    2,
  ],
  [
    'TLS on by default without cert',
    'server',
    'server {\n  agent_tokens = ["t"]\n}\n',
    /server\.tls\.cert_file: required when TLS is enabled/,
    1,
  ],
  [
    'TLS enabled without key',
    'server',
    'server {\n  tls {\n    enabled = true\n    cert_file = "c"\n  }\n}\n',
    /server\.tls\.key_file: required when TLS is enabled/,
    2,
  ],
  [
    'alert_only without webhook',
    'server',
    'server {\n  drift {\n    policy = "alert_only"\n  }\n}\n',
    /server\.drift\.alert_webhook: required when drift policy is "alert_only"/,
    3,
  ],
  [
    'remediate_and_alert without webhook',
    'server',
    'server {\n  drift { policy = "remediate_and_alert" }\n}\n',
    /server\.drift\.alert_webhook: required when drift policy is "remediate_and_alert"/,
    2,
  ],
  [
    'webhook not http',
    'server',
    'server {\n  drift {\n    alert_webhook = "ftp://x"\n  }\n}\n',
    /server\.drift\.alert_webhook: must be an http/,
    3,
  ],
  [
    'server_url not ws',
    'agent',
    'agent {\n  token = "t"\n  server_url = "https://x:7070"\n}\n',
    /agent\.server_url: must be a ws:\/\/ or wss:\/\/ URL/,
    3,
  ],
  ['missing server_url', 'agent', 'agent {\n  token = "t"\n}\n', /agent\.server_url: required/, 1],
  ['missing token', 'agent', 'agent {\n  server_url = "wss://x"\n}\n', /agent\.token: required/, 1],
  [
    'empty token',
    'agent',
    'agent {\n  server_url = "wss://x"\n  token = ""\n}\n',
    /agent\.token: must not be empty/,
    3,
  ],
  ['bad agent name', 'agent', 'agent {\n  name = "web {01}"\n}\n', /agent\.name: must be 1-253 letters/, 2],
  [
    'bad listen address',
    'server',
    'server {\n  listen_http = "localhost"\n}\n',
    /server\.listen_http: must be "host:port"/,
    2,
  ],
  [
    'bad redis url',
    'server',
    'server {\n  redis {\n    url = "localhost:6379"\n  }\n}\n',
    /server\.redis\.url: must be a redis:\/\/ or rediss:\/\/ URL/,
    3,
  ],
  [
    'prefix with braces',
    'server',
    'server {\n  redis { prefix = "{x}" }\n}\n',
    /server\.redis\.prefix: must be letters/,
    2,
  ],
  [
    'max_events_per_agent zero',
    'server',
    'server {\n  event_store {\n    memory {\n      max_events_per_agent = 0\n    }\n  }\n}\n',
    /max_events_per_agent: must be a whole number from 1/,
    4,
  ],
  [
    'duplicate block',
    'server',
    'server {\n  git { url = "a" }\n  git { url = "b" }\n}\n',
    /server\.git: duplicate block \(first at line 2\)/,
    3,
  ],
  [
    'duplicate agent_token id',
    'server',
    'server {\n  agent_token "a" { token = "x" }\n  agent_token "a" { token = "y" }\n}\n',
    /server\.agent_token\.a: duplicate block/,
    3,
  ],
  [
    'agent_token without token',
    'server',
    'server {\n  agent_token "ci" {\n    name_pattern = "ci-*"\n  }\n}\n',
    /server\.agent_token\.ci\.token: required/,
    2,
  ],
  [
    'agent_token without label',
    'server',
    'server {\n  agent_token {\n    token = "x"\n  }\n}\n',
    /server\.agent_token: block takes 1 label, got 0/,
    2,
  ],
  [
    'scoped token also unscoped',
    'server',
    'server {\n  agent_tokens = ["same"]\n  agent_token "x" {\n    token = "same"\n  }\n}\n',
    /server\.agent_token\.x\.token: the same token is also in agent_tokens/,
    4,
  ],
  [
    'allowed_labels with an invalid label key',
    'server',
    'server {\n  agent_token "x" {\n    token = "t"\n    allowed_labels = { "{env}" = ["prod"] }\n  }\n}\n',
    /allowed_labels: key "\{env\}" is not a valid label key/,
    4,
  ],
  [
    'require_labels not a bool',
    'server',
    'server {\n  agent_token "x" {\n    token = "t"\n    require_labels = "no"\n  }\n}\n',
    /server\.agent_token\.x\.require_labels: must be a bool/,
    4,
  ],
  [
    'agent_limits out of range',
    'server',
    'server {\n  agent_limits {\n    max_known_agents = 0\n  }\n}\n',
    /server\.agent_limits\.max_known_agents: must be a whole number from 1 to 100000000, got 0/,
    3,
  ],
  [
    'agent_limits unknown attribute',
    'server',
    'server {\n  agent_limits {\n    max_lables = 3\n  }\n}\n',
    /max_lables/,
    3,
  ],
  [
    'agent label key breaks the label rule',
    'agent',
    'agent {\n  labels = { "{env}" = "prod" }\n}\n',
    /agent\.labels: label key "\{env\}" is invalid/,
    2,
  ],
  [
    'agent label value with a control character',
    'agent',
    'agent {\n  labels = { env = "a\\u0001b" }\n}\n',
    /agent\.labels: label "env" has an invalid value/,
    2,
  ],
  [
    'agent name with ..',
    'agent',
    'agent {\n  name = "web..01"\n}\n',
    /agent\.name: must be 1-253 letters.*without '\.\.'/,
    2,
  ],
  [
    'allowed_labels not lists',
    'server',
    'server {\n  agent_token "x" {\n    token = "t"\n    allowed_labels = { env = "prod" }\n  }\n}\n',
    /allowed_labels: value of "env" must be a list of strings/,
    4,
  ],
  [
    'expression in a config value',
    'server',
    'server {\n  api_tokens = ["${upper("x")}"]\n}\n',
    /only environment references like \$\{NAME\}/,
    2,
  ],
  [
    'allowed_hosts entry with a port',
    'server',
    'server {\n  http {\n    allowed_hosts = ["fluke.example.com:7071"]\n  }\n}\n',
    /server\.http\.allowed_hosts: "fluke\.example\.com:7071" is not a host name or IP address/,
    3,
  ],
  [
    'password without user',
    'server',
    'server {\n  git {\n    url = "https://x"\n    basic_auth_password = "p"\n  }\n}\n',
    /server\.git\.basic_auth_user: required when basic_auth_password is set/,
    4,
  ],
  [
    'walk_back negative',
    'server',
    'server {\n  git {\n    url = "/srv/repo"\n    walk_back = -1\n  }\n}\n',
    /server\.git\.walk_back: must be a whole number from 0 to 1000, got -1/,
    4,
  ],
  [
    'walk_back too large',
    'server',
    'server {\n  git {\n    url = "/srv/repo"\n\n    walk_back = 1001\n  }\n}\n',
    /server\.git\.walk_back: must be a whole number from 0 to 1000, got 1001/,
    5,
  ],
  [
    'walk_back not a number',
    'server',
    'server {\n  git {\n    walk_back = "many"\n  }\n}\n',
    /server\.git\.walk_back: .*whole number/,
    3,
  ],
];

t.test('git.walk_back: 0 (never walk back) and the maximum are accepted', async (t) => {
  for (const n of [0, 1000]) {
    const src = `server {\n  agent_tokens = ["t"]\n  git {\n    url = "/srv/repo"\n    walk_back = ${n}\n  }\n  tls { enabled = false }\n}\n`;
    t.equal((await parseServerConfig('s.hcl', src, {})).git.walk_back, n);
  }
});

t.test('invalid configs: message and line', async (t) => {
  t.ok(INVALID.length >= 15);
  for (const [name, kind, src, message, line] of INVALID) {
    const run =
      kind === 'server'
        ? parseServerConfig('bad.hcl', src, {})
        : parseAgentConfig('bad.hcl', src, {}, 'host');
    try {
      await run;
      t.fail(`${name}: accepted`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const hit = err.errors.find((e) => message.test(e.field ? `${e.field}: ${e.message}` : e.message));
      if (!t.ok(hit, `${name}: message ${message}`)) t.comment(err.message);
      t.equal(hit?.line, line, `${name}: line`);
      t.equal(hit?.file, 'bad.hcl', `${name}: file`);
    }
  }
});

t.test('all errors are reported in one go, sorted by line', async (t) => {
  const src =
    'server {\n  agent_tokens = 1\n  heartbeat_interval = "soon"\n  drift { policy = "x" }\n  log { level = "loud" }\n}\n';
  const err = await parseServerConfig('s.hcl', src, {}).catch((e: unknown) => e);
  t.type(err, ConfigError);
  const lines = (err as ConfigError).errors.map((e) => e.line);
  t.same(
    lines,
    [...lines].sort((a, b) => a - b),
  );
  t.ok(lines.length >= 6, (err as ConfigError).message);
});

t.test('server.http.allowed_hosts: names, IP literals and "*"', async (t) => {
  const cfg = await parseServerConfig(
    's.hcl',
    'server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n  http { allowed_hosts = ["fluke.example.com", "10.0.0.5", "[::1]", "*"] }\n}\n',
    {},
  );
  t.same(cfg.http.allowed_hosts, ['fluke.example.com', '10.0.0.5', '[::1]', '*']);
});

t.test('memory event store is accepted by the loader', async (t) => {
  const cfg = await parseServerConfig(
    's.hcl',
    'server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n  event_store { backend = "memory" }\n}\n',
    {},
  );
  t.equal(cfg.event_store.backend, 'memory');
});

t.test('requiresAlertWebhook', async (t) => {
  t.equal(requiresAlertWebhook('remediate'), false);
  t.equal(requiresAlertWebhook('remediate_and_alert'), true);
  t.equal(requiresAlertWebhook('alert_only'), true);
});

t.test('parseListenAddress', async (t) => {
  t.same(parseListenAddress(':7070'), { host: '', port: 7070 });
  t.same(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListenAddress('[::1]:80'), { host: '::1', port: 80 });
  t.throws(() => parseListenAddress('7070'));
  t.throws(() => parseListenAddress(':70000'));
  // The one rule for config, gateway and console: the config loader's strict one.
  t.throws(
    () => parseListenAddress(' :7070'),
    /must be "host:port", ":port" or "\[v6addr\]:port", got " :7070"/,
  );
  t.throws(() => parseListenAddress('[a b]:80'), 'only address characters inside brackets');
  t.throws(() => parseListenAddress('[::1:80'), 'no stray bracket');
  t.throws(() => parseListenAddress(':70000'), /port 70000 is out of range \(0-65535\)/);
});

t.test('redactConfig hides secrets and copies', async (t) => {
  const cfg = await parseServerConfig('s.hcl', FULL_SERVER, ENV);
  const red = redactConfig(cfg);
  const text = JSON.stringify(red);
  for (const secret of [
    'agent-from-env',
    'plain-token',
    'stg-token',
    'api-from-env',
    'pw-from-env',
    'hook-$ecret',
    ':pw@',
    'XYZ',
    'an-identity-key-of-at-least-32-characters',
  ]) {
    t.notOk(text.includes(secret), `${secret} is hidden`);
  }
  t.equal(red.git.basic_auth_user, REDACTED, 'the git user too: it may be a token');
  t.equal(red.git.basic_auth_password, REDACTED);
  t.equal(red.drift.alert_webhook, `https://hooks.example.com/${REDACTED}`);
  t.equal(red.git.url, cfg.git.url);
  t.equal(cfg.agent_tokens[0], 'agent-from-env', 'the original is untouched');

  const agent = await parseAgentConfig('a.hcl', FULL_AGENT, { FLUKE_AGENT_TOKEN: 'tok', ENV_NAME: 'p' }, 'h');
  const redAgent = redactConfig(agent);
  t.equal(redAgent.token, REDACTED);
  t.equal(redAgent.name, 'web-01');
  t.equal(agent.token, 'tok');
});

t.test('identity block: limits and mistakes', async (t) => {
  const base = (identity: string) =>
    `server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n  identity {\n${identity}\n  }\n}\n`;
  const fails = async (identity: string, pattern: RegExp, what: string) => {
    await t.rejects(parseServerConfig('s.hcl', base(identity), {}), pattern, what);
  };
  await fails('key = "too-short"', /at least 32 characters/, 'a short key');
  await fails('generation = 0', /generation.*whole number from 1/, 'generation 0');
  await fails('revoked_before = { "web-3" = "yesterday" }', /RFC 3339/, 'an instant that is not one');
  await fails(
    'revoked_before = { "web-3" = "2026-12-05T18:00:00" }',
    /RFC 3339/,
    'an instant without a zone',
  );
  await fails('enrollment_ttl = "0s"', /greater than zero/, 'a zero TTL');
  await t.rejects(
    parseServerConfig(
      's.hcl',
      'server {\n  agent_token "unscoped" { token = "x" }\n  git { url = "/r" }\n  tls { enabled = false }\n}\n',
      {},
    ),
    /reserved/,
    'a scoped block may not be named "unscoped" (the grant of plain agent_tokens)',
  );
  const ok = await parseServerConfig('s.hcl', base('key = "0123456789abcdef0123456789abcdef"'), {});
  t.equal(ok.identity.key, '0123456789abcdef0123456789abcdef', 'exactly 32 characters is enough');
});

t.test('agent credential_file: set, or beside the config file', async (t) => {
  const src = (extra: string) => `agent {\n  server_url = "wss://x:1"\n  token = "t"\n${extra}}\n`;
  t.equal(
    (await parseAgentConfig('/etc/fluke/agent.hcl', src(''), {}, 'h')).credential_file,
    '/etc/fluke/agent.credential',
  );
  t.equal(
    (
      await parseAgentConfig(
        '/etc/fluke/agent.hcl',
        src('  credential_file = "/var/lib/fluke/id"\n'),
        {},
        'h',
      )
    ).credential_file,
    '/var/lib/fluke/id',
  );
  await t.rejects(
    parseAgentConfig('/etc/fluke/agent.hcl', src('  credential_file = ""\n'), {}, 'h'),
    /must not be empty/,
  );
});

t.test('loadServerConfig / loadAgentConfig read files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fluke-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'server.hcl'), FULL_SERVER);
  await writeFile(join(dir, 'agent.hcl'), 'agent {\n  server_url = "wss://x:1"\n  token = "t"\n}\n');
  const server = await loadServerConfig(join(dir, 'server.hcl'), ENV);
  t.equal(server.source, join(dir, 'server.hcl'));
  const agent = await loadAgentConfig(join(dir, 'agent.hcl'), {});
  t.ok(agent.name.length > 0, 'name defaults to the host name');
  await t.rejects(loadServerConfig(join(dir, 'missing.hcl')), {
    name: 'ConfigError',
    message: /missing\.hcl: no such file/,
  });
});

t.test('one-line blocks with several attributes', async (t) => {
  const cfg = await parseServerConfig(
    's.hcl',
    'server {\n  agent_tokens = ["t"]\n  git { url = "/r"  branch = "dev" }\n  tls { enabled = true  cert_file = "c"  key_file = "k" }\n}\n',
    {},
  );
  t.same(cfg.git.branch, 'dev');
  t.same(cfg.tls, { enabled: true, cert_file: 'c', key_file: 'k' });
  const err = await parseServerConfig(
    's.hcl',
    'server {\n  agent_tokens = ["t"]\n  git { url = "/r"  branch = 5 }\n}\n',
    {},
  ).catch((e: unknown) => e);
  t.match((err as ConfigError).errors, [{ line: 1 }, { line: 1 }, { line: 3, field: 'server.git.branch' }]);
});

t.test('agent transport: ws:// only to a loopback host unless allow_insecure', async (t) => {
  const agent = (url: string, extra = '') =>
    parseAgentConfig('a.hcl', `agent {\n  token = "t"\n  server_url = "${url}"\n${extra}}\n`, {}, 'h');
  for (const url of [
    'ws://127.0.0.1:7070',
    'ws://127.3.2.1:7070',
    'ws://localhost:7070',
    'ws://LOCALHOST:7070',
    'ws://[::1]:7070',
    'wss://fluke.example.com:7070',
    'wss://10.0.0.5:7070',
  ]) {
    t.equal((await agent(url)).server_url, url, `${url} is accepted`);
  }
  for (const url of [
    'ws://10.0.0.5:7070',
    'ws://fluke.example.com:7070',
    'ws://0.0.0.0:7070',
    'ws://[::2]:7070',
  ]) {
    await t.rejects(
      agent(url),
      {
        name: 'ConfigError',
        message:
          /a\.hcl:3: agent\.server_url: .*the agent token would travel in clear\. Use wss:\/\/.*allow_insecure = true/,
      },
      `${url} is refused`,
    );
  }
  const allowed = await agent('ws://10.0.0.5:7070', '  allow_insecure = true\n');
  t.equal(allowed.allow_insecure, true, 'allow_insecure = true lets it through');
  t.equal((await agent('ws://127.0.0.1:7070')).allow_insecure, false, 'allow_insecure defaults to false');
  await t.rejects(agent('ws://10.0.0.5:7070', '  allow_insecure = "yes"\n'), { name: 'ConfigError' });
});

t.test('shutdown_timeout: default 10s, configurable, must be above zero', async (t) => {
  const server = (extra: string) =>
    parseServerConfig(
      's.hcl',
      `server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n${extra}}\n`,
      {},
    );
  t.equal((await server('')).shutdown_timeout_ms, 10_000);
  t.equal((await server('  shutdown_timeout = "3s"\n')).shutdown_timeout_ms, 3_000);
  await t.rejects(server('  shutdown_timeout = "0s"\n'), {
    message: /s\.hcl:5: server\.shutdown_timeout: must be greater than zero/,
  });
  const agent = (extra: string) =>
    parseAgentConfig(
      'a.hcl',
      `agent {\n  token = "t"\n  server_url = "ws://127.0.0.1:1"\n${extra}}\n`,
      {},
      'h',
    );
  t.equal((await agent('')).shutdown_timeout_ms, 10_000);
  t.equal((await agent('  shutdown_timeout = "1m"\n')).shutdown_timeout_ms, 60_000);
  await t.rejects(agent('  shutdown_timeout = "soon"\n'), { message: /agent\.shutdown_timeout/ });
});
