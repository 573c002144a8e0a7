/** The registry: the contract on the memory twin and on Redis, then what only Redis does. */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { MemoryRegistry } from '../store/registry/memory-registry.js';
import { RedisAgentDirectory } from '../store/registry/redis-agent-directory.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import { startRedis } from '../testkit/redis.js';
import { entry, KNOWN_FOR_MS, registryContract, STALE_AFTER_MS } from './store-registry.contract.js';

const TTL_MS = 60_000;

t.test('memory', async (t) => {
  registryContract(t, async () => {
    const registry = new MemoryRegistry({
      ttlMs: TTL_MS,
      staleAfterMs: STALE_AFTER_MS,
      knownForMs: KNOWN_FOR_MS,
    });
    return { registry, directory: registry, lose: async (name) => registry.expire(name) };
  });

  t.test('an entry lives as long as its TTL; announced gateways are remembered', async (t) => {
    let now = 1_000_000;
    const registry = new MemoryRegistry({ ttlMs: 100, staleAfterMs: 1000, knownForMs: 5000, now: () => now });
    await registry.register(entry('s1', 'gw-1', 'web-01', now));
    now += 99;
    t.equal((await registry.get('web-01'))?.session_id, 's1');
    now += 1;
    t.equal(await registry.get('web-01'), null);
    await registry.announce('gw-9', 42);
    t.equal(registry.gatewaySeen('gw-9'), 42);
    await registry.retire('gw-9');
    t.equal(registry.gatewaySeen('gw-9'), undefined);
  });
});

t.test('redis', async (t) => {
  const r = await startRedis();
  t.teardown(() => r.stop());
  const redis = r.client();
  let n = 0;
  const freshKeys = () => new Keys(`${r.prefix}-${n++}`);

  registryContract(t, async () => {
    const keys = freshKeys();
    return {
      registry: new RedisRegistry({ redis, keys, ttlMs: TTL_MS }),
      directory: new RedisAgentDirectory({
        redis,
        keys,
        staleAfterMs: STALE_AFTER_MS,
        knownForMs: KNOWN_FOR_MS,
      }),
      lose: async (name) => {
        await redis.del(keys.agent(name));
      },
    };
  });

  t.test('entries carry the TTL; the index holds last_seen', async (t) => {
    const keys = freshKeys();
    const registry = new RedisRegistry({ redis, keys, ttlMs: TTL_MS });
    await registry.register(entry('s1', 'gw-1', 'web-01', 1000));
    t.ok((await redis.pttl(keys.agent('web-01'))) > 59_000);
    t.same(await registry.heartbeat([{ ...entry('s1', 'gw-1', 'web-01', 1000), last_seen: 5000 }]), ['ok']);
    t.equal(await redis.zscore(keys.agentIndex(), 'web-01'), '5000');
    t.equal(await registry.deregister('web-01', 's1'), true);
    t.equal(await redis.zscore(keys.agentIndex(), 'web-01'), null);
  });

  t.test('known labels are remembered again by a rebuild after a FLUSHALL', async (t) => {
    const keys = freshKeys();
    const registry = new RedisRegistry({ redis, keys, ttlMs: TTL_MS });
    const labelsOf = async (name: string) =>
      JSON.parse((await redis.hget(keys.knownLabels(), name)) ?? 'null');
    const db = { ...entry('k1', 'gw-1', 'known-01'), labels: { role: 'db' } };
    await registry.register(db);
    await registry.register({ ...entry('k2', 'gw-1', 'known-02'), labels: { v: 'new' } });
    t.same(await labelsOf('known-01'), { role: 'db' });
    await redis.del(keys.agent('known-01'), keys.knownLabels()); // as after a FLUSHALL
    const stale = { ...entry('k0', 'gw-1', 'known-02'), labels: { v: 'old' } };
    t.same(await registry.heartbeat([db, stale]), ['rebuilt', 'replaced']);
    t.same(await labelsOf('known-01'), { role: 'db' }, 'rebuilt entries are remembered again');
    t.equal(await labelsOf('known-02'), null, 'a replaced session writes no labels');
  });

  t.test('scripts survive SCRIPT FLUSH', async (t) => {
    const registry = new RedisRegistry({ redis, keys: freshKeys(), ttlMs: TTL_MS });
    await redis.script('FLUSH');
    t.equal(await registry.register(entry('s4')), null);
    t.same(await registry.heartbeat([entry('s4')]), ['ok']);
  });

  t.test('announce and retire', async (t) => {
    const keys = freshKeys();
    const registry = new RedisRegistry({ redis, keys, ttlMs: TTL_MS });
    await registry.announce('gw-9', 42);
    t.equal(await redis.hget(keys.gateways(), 'gw-9'), '42');
    await registry.retire('gw-9');
    t.equal(await redis.hget(keys.gateways(), 'gw-9'), null);
  });
});
