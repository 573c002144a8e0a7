/** The gateway inbox: the contract on the memory twin and on Redis streams. */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { MemoryGatewayInbox } from '../store/inbox/memory-inbox.js';
import { RedisGatewayInbox } from '../store/inbox/redis-inbox.js';
import { MemoryRegistry } from '../store/registry/memory-registry.js';
import { RedisRegistry } from '../store/registry/redis-registry.js';
import { startRedis } from '../testkit/redis.js';
import { silentLogger } from './helpers/reconciler-fakes.js';
import { inboxContract } from './store-inbox.contract.js';

t.test('memory', async (t) => {
  inboxContract(t, async () => {
    const registry = new MemoryRegistry({ ttlMs: 60_000, staleAfterMs: 60_000, knownForMs: 60_000 });
    return { inbox: new MemoryGatewayInbox({ gateways: registry }), registry };
  });
});

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  let n = 0;
  inboxContract(t, async () => {
    const keys = new Keys(`${redis.prefix}-${n++}`);
    return {
      inbox: new RedisGatewayInbox({
        redis: client,
        keys,
        logger: silentLogger,
        connect: () => redis.client(),
      }),
      registry: new RedisRegistry({ redis: client, keys, ttlMs: 60_000 }),
    };
  });
});
