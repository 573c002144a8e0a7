/** The Redis registry adapter on a real Redis: every write is guarded by session_id. */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import type { RegistryEntry } from '../shared/registry-entry.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import { startRedis } from '../testkit/redis.js';

const r = await startRedis();
t.teardown(() => r.stop());
const redis = r.client();
const keys = new Keys(r.prefix);
const registry = new RedisRegistry({ redis, keys, ttlMs: 60_000 });
const entry = (session: string, gateway = 'gw-1', name = 'web-01'): RegistryEntry => ({
  name,
  labels: { role: 'web' },
  gateway_id: gateway,
  session_id: session,
  connected_at: 1000,
  last_seen: 1000,
  agent_version: '1',
  executors: ['shell'],
  running: [],
});

t.test('register returns the session it replaced', async (t) => {
  t.equal(await registry.register(entry('s1')), null);
  t.same(await registry.register(entry('s2', 'gw-2')), { session_id: 's1', gateway_id: 'gw-1' });
  t.same(await registry.get('web-01'), entry('s2', 'gw-2'));
  t.ok((await redis.pttl(keys.agent('web-01'))) > 59_000);
});

t.test('heartbeat: ok for the owner, replaced for others, rebuilt when missing', async (t) => {
  await registry.register(entry('s2', 'gw-2'));
  await registry.register(entry('a1', 'gw-1', 'db-01'));
  const beat = { ...entry('s2', 'gw-2'), last_seen: 5000 };
  const stale = { ...entry('s1'), last_seen: 5000 };
  await redis.del(keys.agent('db-01'));
  const lost = { ...entry('a1', 'gw-1', 'db-01'), last_seen: 6000 };
  t.same(await registry.heartbeat([beat, stale, lost]), ['ok', 'replaced', 'rebuilt']);
  t.equal((await registry.get('web-01'))?.last_seen, 5000);
  t.equal((await registry.get('web-01'))?.session_id, 's2', 'the stale session wrote nothing');
  t.same(await registry.get('db-01'), lost, 'rebuilt whole');
  t.equal(await redis.zscore(keys.agentIndex(), 'web-01'), '5000');
  t.same(await registry.heartbeat([]), []);
});

t.test('deregister only removes its own session', async (t) => {
  await registry.register(entry('s3'));
  t.equal(await registry.deregister('web-01', 's2'), false);
  t.equal((await registry.get('web-01'))?.session_id, 's3');
  t.equal(await registry.deregister('web-01', 's3'), true);
  t.equal(await registry.get('web-01'), null);
  t.equal(await redis.zscore(keys.agentIndex(), 'web-01'), null);
});

t.test('known labels: written on register and rebuild, kept on deregister', async (t) => {
  const labelsOf = async (name: string) => JSON.parse((await redis.hget(keys.knownLabels(), name)) ?? 'null');
  const db = { ...entry('k1', 'gw-1', 'known-01'), labels: { role: 'db' } };
  await registry.register(db);
  await registry.register({ ...entry('k2', 'gw-1', 'known-02'), labels: { v: 'new' } });
  t.same(await labelsOf('known-01'), { role: 'db' });
  await redis.del(keys.agent('known-01'), keys.knownLabels()); // as after a FLUSHALL
  const stale = { ...entry('k0', 'gw-1', 'known-02'), labels: { v: 'old' } };
  t.same(await registry.heartbeat([db, stale]), ['rebuilt', 'replaced']);
  t.same(await labelsOf('known-01'), { role: 'db' }, 'rebuilt entries are remembered again');
  t.equal(await labelsOf('known-02'), null, 'a replaced session writes no labels');
  t.equal(await registry.deregister('known-01', 'k1'), true);
  t.same(await labelsOf('known-01'), { role: 'db' }, 'a disconnect keeps them');
});

t.test('scripts survive SCRIPT FLUSH', async (t) => {
  await redis.script('FLUSH');
  t.equal(await registry.register(entry('s4')), null);
  t.same(await registry.heartbeat([entry('s4')]), ['ok']);
});

t.test('announce and retire', async (t) => {
  await registry.announce('gw-9', 42);
  t.equal(await redis.hget(keys.gateways(), 'gw-9'), '42');
  await registry.retire('gw-9');
  t.equal(await redis.hget(keys.gateways(), 'gw-9'), null);
});
