/**
 * The all-in-one server in-process on a private Redis, with the console's read access chosen:
 * for the tests of what listen_http serves beside the API (Bull Board, /metrics).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Services, type StartOptions, startServices } from '../../bin/services.js';
import { parseServerConfig } from '../../shared/config/load.js';
import { makeGitRepo } from '../../testkit/git-repo.js';
import { freePort, startRedis, type TestRedis } from '../../testkit/redis.js';
import { API_TOKEN, serverHcl } from '../../testkit/system.js';

export interface ConsoleServices {
  redis: TestRedis;
  services: Services;
  base: string;
  httpPort: number;
  agentsPort: number;
}

export interface ConsoleServicesOptions {
  /** api_read_access; 'auto' leaves the setting out (its default). */
  readAccess: 'open' | 'token' | 'auto';
  /** api_tokens (default: API_TOKEN alone). */
  apiTokens?: string[];
  /** http { allowed_hosts = [...] } */
  allowedHosts?: string[];
  /** listen_http's address (default 127.0.0.1); the base URL reaches it through loopback. */
  httpHost?: string;
  /** Default: silent. */
  logger?: StartOptions['logger'];
  evictionCheckMs?: number;
}

export async function startConsoleServices(
  t: { teardown(fn: () => unknown): void },
  options: ConsoleServicesOptions['readAccess'] | ConsoleServicesOptions,
): Promise<ConsoleServices> {
  const o = typeof options === 'string' ? { readAccess: options } : options;
  const apiTokens = o.apiTokens ?? [API_TOKEN];
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const repo = await makeGitRepo();
  t.teardown(() => repo.remove());
  await repo.commit({
    'a.fluke.hcl':
      'task "t" {\n  selector { match_labels = { role = "x" } }\n  shell "s" {\n    check   = "true"\n    command = "true"\n  }\n}\n',
  });
  const dir = mkdtempSync(join(tmpdir(), 'fluke-console-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const httpPort = await freePort();
  const agentsPort = await freePort();
  const settings = [
    ...(o.readAccess === 'auto' ? [] : [`  api_read_access    = "${o.readAccess}"`]),
    ...(o.allowedHosts ? [`  http { allowed_hosts = ${JSON.stringify(o.allowedHosts)} }`] : []),
  ];
  let source = serverHcl({
    agentsPort,
    httpPort,
    redisUrl: redis.url,
    prefix: redis.prefix,
    repo: repo.dir,
    pollInterval: '60s',
    heartbeat: '1s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore: 'redis',
  }).replace(/^(\s*api_tokens\s*=).*$/m, [`$1 ${JSON.stringify(apiTokens)}`, ...settings].join('\n'));
  if (o.httpHost)
    source = source.replace(/listen_http\s*=\s*"[^"]*"/, `listen_http = "${o.httpHost}:${httpPort}"`);
  const config = await parseServerConfig(join(dir, 'server.hcl'), source, {});
  if (
    config.api_tokens.length !== apiTokens.length ||
    (o.readAccess !== 'auto' && config.api_read_access !== o.readAccess) ||
    (o.httpHost !== undefined && config.listen_http !== `${o.httpHost}:${httpPort}`)
  )
    throw new Error('serverHcl changed shape');
  const services = await startServices(config, 'server', {
    dataDir: dir,
    logger: o.logger ?? pino({ level: 'silent' }),
    ...(o.evictionCheckMs ? { evictionCheckMs: o.evictionCheckMs } : {}),
  });
  t.teardown(() => services.close());
  return { redis, services, base: `http://127.0.0.1:${httpPort}`, httpPort, agentsPort };
}

export const basic = (password: string, user = 'admin') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export { API_TOKEN };
