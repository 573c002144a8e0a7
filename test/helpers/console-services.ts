/**
 * The all-in-one server in-process on a private Redis, with the console's read access chosen:
 * for the tests of what listen_http serves beside the API (Bull Board, /metrics).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Services, startServices } from '../../bin/services.js';
import { parseServerConfig } from '../../shared/config/load.js';
import { makeGitRepo } from '../../testkit/git-repo.js';
import { freePort, startRedis, type TestRedis } from '../../testkit/redis.js';
import { API_TOKEN, serverHcl } from '../../testkit/system.js';

export interface ConsoleServices {
  redis: TestRedis;
  services: Services;
  base: string;
}

export async function startConsoleServices(
  t: { teardown(fn: () => unknown): void },
  readAccess: 'open' | 'token',
): Promise<ConsoleServices> {
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
  const source = serverHcl({
    agentsPort: await freePort(),
    httpPort,
    redisUrl: redis.url,
    prefix: redis.prefix,
    repo: repo.dir,
    pollInterval: '60s',
    heartbeat: '1s',
    policy: 'remediate',
    alertWebhook: null,
    eventStore: 'redis',
  }).replace(/^(\s*api_tokens\s*=.*)$/m, `$1\n  api_read_access    = "${readAccess}"`);
  if (!source.includes(`api_read_access    = "${readAccess}"`)) throw new Error('serverHcl changed shape');
  const config = await parseServerConfig(join(dir, 'server.hcl'), source, {});
  const services = await startServices(config, 'server', { dataDir: dir, logger: pino({ level: 'silent' }) });
  t.teardown(() => services.close());
  return { redis, services, base: `http://127.0.0.1:${httpPort}` };
}

export const basic = (password: string, user = 'admin') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export { API_TOKEN };
