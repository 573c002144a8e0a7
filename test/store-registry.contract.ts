/**
 * The registry contract (store/registry/registry.ts, the gateway's write port, and
 * store/registry/agent-directory.ts, the readers' port), run against the memory twin and the
 * Redis implementations by store-registry.test.ts.
 */
import type { Test } from 'tap';
import type { RegistryEntry } from '../shared/registry-entry.js';
import type { AgentDirectory } from '../store/registry/agent-directory.js';
import type { Registry } from '../store/registry/registry.js';

/** The suite's staleness and retention: an index entry is pruned after a minute, a known agent after an hour. */
export const STALE_AFTER_MS = 60_000;
export const KNOWN_FOR_MS = 3_600_000;

export interface RegistryWorld {
  registry: Registry;
  directory: AgentDirectory;
  /** What the end of an entry's TTL does (or a FLUSHALL of it). */
  lose(name: string): Promise<void>;
}

export function entry(
  session: string,
  gateway = 'gw-1',
  name = 'web-01',
  lastSeen = Date.now(),
): RegistryEntry {
  return {
    name,
    labels: { role: 'web' },
    gateway_id: gateway,
    session_id: session,
    connected_at: lastSeen,
    last_seen: lastSeen,
    agent_version: '1',
    executors: ['shell'],
    running: [],
  };
}

export function registryContract(t: Test, make: () => Promise<RegistryWorld>) {
  t.test('register returns the session it replaced', async (t) => {
    const { registry } = await make();
    const now = Date.now();
    t.equal(await registry.register(entry('s1', 'gw-1', 'web-01', now)), null);
    t.equal(
      await registry.register(entry('s1', 'gw-1', 'web-01', now)),
      null,
      'its own session: nothing replaced',
    );
    t.same(await registry.register(entry('s2', 'gw-2', 'web-01', now)), {
      session_id: 's1',
      gateway_id: 'gw-1',
    });
    t.same(await registry.get('web-01'), entry('s2', 'gw-2', 'web-01', now));
    t.equal(await registry.get('nobody'), null);
  });

  t.test('heartbeat: ok for the owner, replaced for others, rebuilt when missing', async (t) => {
    const { registry, directory, lose } = await make();
    const now = Date.now();
    await registry.register(entry('s2', 'gw-2', 'web-01', now - 10));
    await registry.register(entry('a1', 'gw-1', 'db-01', now - 10));
    const beat = { ...entry('s2', 'gw-2', 'web-01', now - 10), last_seen: now, running: ['i.0'] };
    const stale = { ...entry('s1', 'gw-1', 'web-01', now - 10), last_seen: now };
    await lose('db-01');
    const lost = { ...entry('a1', 'gw-1', 'db-01', now - 10), last_seen: now };
    t.same(await registry.heartbeat([beat, stale, lost]), ['ok', 'replaced', 'rebuilt']);
    t.match(await registry.get('web-01'), { last_seen: now, running: ['i.0'], session_id: 's2' });
    t.equal((await registry.get('web-01'))?.gateway_id, 'gw-2', 'the stale session wrote nothing');
    t.same(await registry.get('db-01'), lost, 'rebuilt whole');
    t.same(await directory.names(), ['db-01', 'web-01'].sort());
    t.same(await registry.heartbeat([]), []);
  });

  t.test('deregister only removes its own session; the agent stays known', async (t) => {
    const { registry, directory } = await make();
    await registry.register(entry('s2'));
    await registry.register(entry('s3'));
    t.equal(await registry.deregister('web-01', 's2'), false);
    t.equal((await registry.get('web-01'))?.session_id, 's3');
    t.equal(await registry.deregister('web-01', 's3'), true);
    t.equal(await registry.deregister('web-01', 's3'), false, 'once');
    t.equal(await registry.get('web-01'), null);
    t.same(await directory.names(), []);
    t.same([...(await directory.known()).keys()], ['web-01']);
  });

  t.test('known labels: written on register and rebuild, kept on deregister', async (t) => {
    const { registry, directory, lose } = await make();
    const db = { ...entry('k1', 'gw-1', 'known-01'), labels: { role: 'db' } };
    await registry.register(db);
    await registry.register({ ...entry('k2', 'gw-1', 'known-02'), labels: { v: 'new' } });
    await lose('known-01');
    const stale = { ...entry('k0', 'gw-1', 'known-02'), labels: { v: 'old' } };
    t.same(await registry.heartbeat([db, stale]), ['rebuilt', 'replaced']);
    const labels = await directory.knownLabels(['known-01', 'known-02', 'ghost']);
    t.same(Object.fromEntries(labels), { 'known-01': { role: 'db' }, 'known-02': { v: 'new' } });
    t.equal(await registry.deregister('known-01', 'k1'), true);
    t.same(await directory.knownLabels(['known-01']), new Map([['known-01', { role: 'db' }]]), 'kept');
    t.same(await directory.knownLabels([]), new Map());
  });

  t.test('the directory: connected agents sorted by name; what aged out is pruned on read', async (t) => {
    const { registry, directory } = await make();
    const now = Date.now();
    await registry.register(entry('s-b', 'gw-1', 'web-b', now));
    await registry.register(entry('s-a', 'gw-2', 'web-a', now - 5));
    await registry.register(entry('s-old', 'gw-1', 'old-1', now - 2 * STALE_AFTER_MS));
    await registry.register({
      ...entry('s-gone', 'gw-1', 'gone-1', now - 2 * KNOWN_FOR_MS),
      labels: { x: 'y' },
    });
    t.same(await directory.names(), ['web-a', 'web-b'], 'by last seen');
    t.same(
      (await directory.list()).map((e) => [e.name, e.gateway_id]),
      [
        ['web-a', 'gw-2'],
        ['web-b', 'gw-1'],
      ],
    );
    t.same(await directory.get('web-a'), entry('s-a', 'gw-2', 'web-a', now - 5));
    const known = await directory.known();
    t.same([...known.keys()].sort(), ['old-1', 'web-a', 'web-b']);
    t.equal(known.get('web-b'), now);
    t.same(await directory.knownLabels(['gone-1']), new Map(), 'its labels went with it');
  });
}
