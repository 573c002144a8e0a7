/**
 * `npm start` (`fluke dev`): a private Redis, the demo repo, the server and a local agent; the
 * newcomer sees the agent connect and the demo tasks applied; Ctrl-C stops everything it started.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../testkit/redis.js';
import { spawnFluke, waitFor } from '../testkit/system.js';

function processesMentioning(text: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', text]).toString().trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

t.test('fluke dev shows a working system and stops cleanly on Ctrl-C', async (t) => {
  // The demo manifests (examples/) write under /tmp/fluke-demo: start from a clean sandbox so the
  // alert_only task is drifted and the sandbox task has something to apply.
  rmSync('/tmp/fluke-demo', { recursive: true, force: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'fluke-dev-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { REDIS_URL: '' };
  const dev = spawnFluke(
    [
      'dev',
      '--data-dir',
      dataDir,
      '--http-port',
      String(await freePort()),
      '--agents-port',
      String(await freePort()),
    ],
    env,
  );
  t.teardown(async () => {
    // Ctrl-C first; whatever is left (the demo's Redis and agent carry the data dir in their
    // arguments) is killed, so a failed test never leaves them behind holding our pipes.
    await Promise.race([dev.stop('SIGINT'), new Promise((r) => setTimeout(r, 15_000))]);
    await dev.stop('SIGKILL');
    try {
      execFileSync('pkill', ['-9', '-f', dataDir]);
    } catch {
      // nothing left
    }
  });
  await waitFor(
    'the banner',
    async () => dev.output(),
    (o) => o.includes('Fluke demo is running.'),
    60_000,
  );
  const url = /HTTP API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(dev.output())?.[1];
  t.ok(url, 'the URL is printed');
  await waitFor(
    'the demo applied',
    async () => dev.output(),
    (o) => /demo-agent demo_sandbox: applied/.test(o),
    60_000,
  );
  await waitFor(
    'the alert_only task alerted',
    async () => dev.output(),
    (o) => o.includes('ALERT drift_detected: demo-agent demo_motd'),
    60_000,
  );
  const agents = (await (await fetch(`${url}/api/v1/agents`)).json()) as {
    agents: { name: string; connected: boolean }[];
  };
  t.match(agents.agents, [{ name: 'demo-agent', connected: true }]);
  t.ok(processesMentioning(dataDir).length >= 2, 'redis-server and the agent run beside it');

  dev.child.kill('SIGINT');
  t.equal(await dev.exited, 0, dev.output());
  await waitFor(
    'children gone',
    async () => processesMentioning(dataDir),
    (p) => p.length === 0,
    15_000,
  );
});
