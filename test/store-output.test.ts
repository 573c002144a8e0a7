/** The live output: the contract on the memory twin and on Redis (channels and replay lists). */
import t from 'tap';
import { Keys } from '../shared/keys.js';
import { ChannelHub } from '../store/output/channel-hub.js';
import { MemoryOutputLog } from '../store/output/memory-output.js';
import { RedisOutputLog } from '../store/output/redis-output.js';
import { startRedis } from '../testkit/redis.js';
import { silentLogger } from './helpers/reconciler-fakes.js';
import { BUFFER_LINES, outputContract } from './store-output.contract.js';

t.test('memory', async (t) =>
  outputContract(t, async () => new MemoryOutputLog({ bufferLines: BUFFER_LINES })),
);

t.test('redis', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const client = redis.client();
  const hub = new ChannelHub(() => redis.client(), silentLogger);
  t.teardown(() => hub.close());
  let n = 0;
  outputContract(
    t,
    async () =>
      new RedisOutputLog({
        redis: client,
        keys: new Keys(`${redis.prefix}-${n++}`),
        hub,
        bufferLines: BUFFER_LINES,
      }),
  );

  t.test('replay lists carry the TTL', async (t) => {
    const keys = new Keys(`${redis.prefix}-${n++}`);
    const log = new RedisOutputLog({ redis: client, keys, hub, bufferTtlMs: 60_000 });
    await log.append([{ kind: 'end', agent: 'a', execution_id: 'x', task: 't', outcome: 'applied', at: 1 }]);
    const ttl = await client.pttl(keys.outputBuffer('x'));
    t.ok(ttl > 50_000 && ttl <= 60_000, `${ttl}`);
  });
});
