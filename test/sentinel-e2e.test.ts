/**
 * The whole system on Redis Sentinel (a real quorum, testkit/redis-sentinel.ts): commit → apply →
 * results; then the master is killed while the agents' results are in flight, and those results
 * exist on the master only (the replica is frozen, so it never got them — what asynchronous
 * replication loses). After the promotion the agents re-send what was never acknowledged, it is
 * recorded, nothing is applied twice, and the system carries on: a new commit applies, drift is
 * remediated.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { FlukeEvent } from '../shared/events.js';
import { createRedis } from '../store/redis/client.js';
import { sentinelRedis, startRedisSentinel } from '../testkit/redis-sentinel.js';
import { sandbox, startSystem, waitFor } from '../testkit/system.js';

type TaskRun = Extract<FlukeEvent, { kind: 'task_run' }>;

const HOSTS = ['web-01', 'web-02'] as const;
/** More than the loopback socket buffers hold (tcp_rmem max 32 MiB + tcp_wmem max 4 MiB here). */
const BALLAST_BYTES = 48 * 1024 * 1024;
type Host = (typeof HOSTS)[number];

/**
 * One task per host (its own dir), one step: `check` passes once the version file holds
 * `version`; the command logs that it started and each completed run.
 */
function siteFiles(dirs: Record<Host, string>, version: string, slow: boolean): Record<string, string> {
  const task = (host: Host) => {
    const d = dirs[host];
    const wait = slow ? 'sleep 3; ' : '';
    return `
task "site-${host}" {
  selector { match_labels = { host = "${host}" } }
  shell "deploy" {
    check   = "grep -qx ${version} ${d}/version"
    command = "echo ${version} >> ${d}/started; ${wait}echo ${version} > ${d}/version; echo ${version} >> ${d}/runs"
  }
}
`;
  };
  return { 'site.fluke.hcl': HOSTS.map(task).join('') };
}

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
const count = (file: string, v: string) => lines(file).filter((l) => l === v).length;

t.test('Sentinel failover with results in flight: re-sent, recorded, never applied twice', async (t) => {
  const s = await startRedisSentinel({ replicas: 1 });
  // Teardowns run last-in first-out: the quorum stops after the system's server has closed.
  t.teardown(() => s.stop());
  const dirs = { 'web-01': sandbox(t), 'web-02': sandbox(t) };
  const sys = await startSystem(t, {
    files: siteFiles(dirs, 'v1', false),
    redisConfig: sentinelRedis(s),
    pollInterval: '2s',
  });
  const gateway = sys.services?.gateway;
  if (!gateway) throw new Error('the in-process server has a gateway');
  let unreplicated = 0;
  gateway.events.on('results:unreplicated', (e) => {
    unreplicated += e.count;
  });
  for (const host of HOSTS) await sys.startAgent(host, { role: 'web', host });
  const runsOf = (host: Host) => join(dirs[host], 'runs');
  const events = (host: Host) =>
    sys
      .get<{ events: FlukeEvent[] }>(`/api/v1/events?agent=${host}&task=site-${host}`)
      .then((p) => p.events.filter((e): e is TaskRun => e.kind === 'task_run'));
  const appliedAt = async (host: Host, revision: string) =>
    (await events(host)).some((e) => e.outcome === 'applied' && e.revision === revision);
  const revision = async () => (await sys.get<{ revision: string }>('/api/v1/status')).revision;

  // 1. commit → apply → results.
  const v1 = await waitFor('v1 compiled', revision, (r) => /^[0-9a-f]{40}$/.test(r ?? ''));
  for (const host of HOSTS) await waitFor(`${host} applied v1`, () => appliedAt(host, v1), Boolean);

  // 2. A slow change: once both agents are running it (its instruction is on the replica too),
  //    the replica freezes, so their results reach the master only.
  const v2 = await sys.repo.commit(siteFiles(dirs, 'v2', true));
  for (const host of HOSTS)
    await waitFor(
      'v2 started',
      async () => count(join(dirs[host], 'started'), 'v2'),
      (n) => n === 1,
    );
  const master = await s.masterPort();
  const frozen = s.dataPorts.find((p) => p !== master) as number;
  s.signal(frozen, 'SIGSTOP');
  t.teardown(() => s.signal(frozen, 'SIGCONT'));
  // A frozen replica's socket still buffers what the master streams to it (and would apply it on
  // waking): fill those kernel buffers first, so the results stay in the master's memory only.
  const direct = createRedis(`redis://127.0.0.1:${master}`, { maxRetriesPerRequest: 1 });
  await direct.set(`${s.prefix}:ballast`, Buffer.alloc(BALLAST_BYTES, 120));
  direct.disconnect();
  await waitFor(
    'v2 results enqueued but unconfirmed',
    async () => unreplicated,
    (n) => n >= 2,
    60_000,
  );
  t.ok(unreplicated >= 2, 'the gateway did not ack results no replica had');

  // 3. The master dies with them; the frozen replica wakes up and is promoted.
  await s.kill(master);
  s.signal(frozen, 'SIGCONT');
  await waitFor(
    'promotion',
    () => s.masterPort(),
    (p) => p === frozen,
    60_000,
  );
  const promotedAt = Date.now();
  for (const host of HOSTS)
    t.notOk(await appliedAt(host, v2), `${host}: the promoted replica never got the v2 result`);

  // 4. The agents re-send the unacknowledged results: recorded on the new master.
  for (const host of HOSTS)
    await waitFor(
      `${host} v2 result recorded after the failover`,
      () => appliedAt(host, v2),
      Boolean,
      120_000,
    );
  t.comment(`v2 results re-sent and recorded ${Date.now() - promotedAt} ms after the promotion`);
  for (const name of HOSTS) {
    t.equal(count(runsOf(name), 'v1'), 1, `${name}: v1 applied once`);
    t.equal(count(runsOf(name), 'v2'), 1, `${name}: v2 applied once`);
  }

  // 5. The system carries on: a new commit applies, drift is remediated.
  const v3 = await sys.repo.commit(siteFiles(dirs, 'v3', false));
  for (const host of HOSTS) await waitFor(`${host} applied v3`, () => appliedAt(host, v3), Boolean);
  const deletedAt = new Date().toISOString();
  unlinkSync(join(dirs['web-02'], 'version'));
  await waitFor(
    'drift remediated',
    () => events('web-02'),
    (evs) => evs.some((e) => e.at >= deletedAt && e.outcome === 'applied' && e.revision === v3),
    90_000,
  );
  t.equal(count(runsOf('web-01'), 'v3'), 1, 'web-01: v3 once');
  t.equal(count(runsOf('web-02'), 'v3'), 2, 'web-02: v3 once, then once more for the drift');
  for (const name of HOSTS) {
    t.equal(count(runsOf(name), 'v2'), 1, `${name}: still v2 once`);
  }
});
