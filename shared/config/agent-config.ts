/** agent.hcl → AgentConfig, every field and default as docs/configuration.md "agent.hcl" lists them. */
import { hostname as osHostname } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { AGENT_NAME_RULE, isAgentName, labelsProblem } from '../agent-rules.js';
import type { BodySchema, ConfigBodyReader } from './config-body-reader.js';
import type { Env } from './env.js';
import { LOG_SCHEMA, openConfig, readLog, throwIfErrors } from './open-config.js';
import { type AgentConfig, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './types.js';

const AGENT_ATTRIBUTES = [
  'server_url',
  'allow_insecure',
  'token',
  'credential_file',
  'name',
  'labels',
  'shutdown_timeout',
];
const ROOT: BodySchema = {
  attributes: [],
  blocks: { agent: 0 },
  hints: Object.fromEntries(
    [...AGENT_ATTRIBUTES, 'tls', 'execution', 'log'].map((n) => [n, 'it belongs inside agent { }']),
  ),
};
const AGENT: BodySchema = { attributes: AGENT_ATTRIBUTES, blocks: { tls: 0, execution: 0, log: 0 } };
const TLS: BodySchema = { attributes: ['ca_file', 'insecure_skip_verify'], blocks: {} };
const EXECUTION: BodySchema = { attributes: ['default_shell', 'command_timeout'], blocks: {} };

/** The one agent-name rule (shared/agent-rules.ts), re-exported for the loader's callers. */
export { AGENT_NAME } from '../agent-rules.js';

/** 127.0.0.0/8, ::1 (also as an IPv4-mapped address) and `localhost`, as `new URL()` spells them. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return (
    host === 'localhost' ||
    host === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host)
  );
}

/** True for a `ws://` URL to a host that is not loopback: the token would cross a network in clear. */
export function isCleartextToRemote(serverUrl: string): boolean {
  try {
    const url = new URL(serverUrl);
    return url.protocol === 'ws:' && !isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

function checkTransport(a: ConfigBodyReader, serverUrl: string, allowInsecure: boolean): void {
  if (allowInsecure || !isCleartextToRemote(serverUrl)) return;
  a.error(
    'server_url',
    `${JSON.stringify(serverUrl)} is ws:// to a host that is not loopback: the agent token would travel in clear. ` +
      'Use wss:// (with tls { ca_file } for a private CA), or set allow_insecure = true if the network to the gateway is trusted',
    a.lineOf('server_url'),
  );
}

/** Reads agent.hcl text. `hostname` is the default name. Throws ConfigError listing every problem. */
export async function parseAgentConfig(
  file: string,
  source: string,
  env: Env = process.env,
  hostname: string = osHostname(),
): Promise<AgentConfig> {
  const { ctx, root } = await openConfig(file, source, env, ROOT);
  const a = root.block('agent', AGENT);
  if (!a.present) {
    a.error('', 'missing required block: agent { ... }');
    throwIfErrors(ctx);
  }

  const serverUrl = a.requiredString('server_url') ?? '';
  if (serverUrl) {
    let protocol = '';
    try {
      protocol = new URL(serverUrl).protocol;
    } catch {
      protocol = '';
    }
    if (protocol !== 'ws:' && protocol !== 'wss:') {
      a.error(
        'server_url',
        `must be a ws:// or wss:// URL, got ${JSON.stringify(serverUrl)}`,
        a.lineOf('server_url'),
      );
    }
  }
  const allowInsecure = a.bool('allow_insecure') ?? false;
  checkTransport(a, serverUrl, allowInsecure);

  const name = a.string('name') ?? hostname;
  if (!isAgentName(name)) {
    const why = a.has('name') ? '' : ` (the host name ${JSON.stringify(hostname)}; set agent.name)`;
    a.error('name', `must be ${AGENT_NAME_RULE}, got ${JSON.stringify(name)}${why}`, a.lineOf('name'));
  }

  const labels = a.stringMap('labels') ?? {};
  // The gateway's rule and default limits: a config that loads is never refused for its labels
  // by a gateway running the defaults.
  const labelProblem = labelsProblem(labels);
  if (labelProblem) a.error('labels', labelProblem, a.lineOf('labels'));

  const tls = a.block('tls', TLS);
  const caFile = tls.string('ca_file');
  if (caFile === '') tls.error('ca_file', 'must not be empty (leave it out instead)', tls.lineOf('ca_file'));
  const execution = a.block('execution', EXECUTION);
  const shell = execution.string('default_shell') ?? '/bin/bash';
  if (shell === '') execution.error('default_shell', 'must not be empty', execution.lineOf('default_shell'));

  const config: AgentConfig = {
    source: file,
    server_url: serverUrl,
    allow_insecure: allowInsecure,
    token: a.requiredString('token') ?? '',
    credential_file: credentialFile(a, file),
    name,
    labels,
    tls: { ca_file: caFile || null, insecure_skip_verify: tls.bool('insecure_skip_verify') ?? false },
    execution: { default_shell: shell, command_timeout_ms: execution.duration('command_timeout') ?? 300_000 },
    shutdown_timeout_ms: a.duration('shutdown_timeout') ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    log: readLog(a.block('log', LOG_SCHEMA)),
  };
  throwIfErrors(ctx);
  return config;
}

/** `credential_file`, or `<config dir>/<config file name without extension>.credential`. */
function credentialFile(a: ConfigBodyReader, file: string): string {
  const v = a.string('credential_file');
  if (v === '')
    a.error('credential_file', 'must not be empty (leave it out instead)', a.lineOf('credential_file'));
  if (v) return v;
  return join(dirname(file), `${basename(file, extname(file))}.credential`);
}
