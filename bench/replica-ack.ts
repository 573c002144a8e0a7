/**
 * What acknowledging results only after a replica has them costs a gateway: a master and one
 * replica on loopback (testkit/redis-sentinel.ts), the gateway's results queue and ResultForwarder,
 * batches of `--batch` task results (one addBulk each) pushed one after another, with and without
 * the `WAIT 1` of store/redis/replica-wait.ts. Reports wall ms per batch (median and p99) and the
 * bench process's CPU ms per batch.
 *
 *   node --import tsx bench/replica-ack.ts [--batches 500] [--batch 50]
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ResultForwarder, type ResultSource } from '../gateway/result-forwarder.js';
import { SINGLE_REDIS } from '../shared/config/redis-topology.js';
import { QUEUE_NAMES } from '../shared/jobs/options.js';
import { Keys } from '../shared/keys.js';
import type { TaskResultMessage } from '../shared/protocol.js';
import { openQueue } from '../store/queues/queues.js';
import { createRedis } from '../store/redis/client.js';
import { replicaWait } from '../store/redis/replica-wait.js';
import { sentinelOptions } from '../store/redis/sentinel.js';
import { startRedisSentinel } from '../testkit/redis-sentinel.js';

const { values } = parseArgs({
  options: { batches: { type: 'string', default: '500' }, batch: { type: 'string', default: '50' } },
});
const batches = Number(values.batches);
const size = Number(values.batch);

const result = (id: string): TaskResultMessage => ({
  type: 'task_result',
  result_id: id,
  instruction_id: 'i-1',
  execution_id: 'i-1.0',
  task: 'motd',
  mode: 'check',
  outcome: 'satisfied',
  started_at: '2025-01-01T00:00:00.000Z',
  finished_at: '2025-01-01T00:00:01.000Z',
  duration_ms: 1,
  steps: [],
});

const s = await startRedisSentinel({ replicas: 1 });
try {
  const config = {
    url: 'redis://127.0.0.1:1',
    ...SINGLE_REDIS,
    sentinels: s.sentinels,
    master_name: s.masterName,
  };
  for (const wait of [false, true, false, true]) {
    const client = createRedis(config.url, sentinelOptions(config) ?? {});
    const queue = openQueue(QUEUE_NAMES.results, client, new Keys(`${s.prefix}-${wait}`), { defaults: null });
    const forwarder = new ResultForwarder({
      queue,
      gatewayId: 'bench',
      timeoutMs: 10_000,
      maxPending: 1_000_000,
      logger: pino({ level: 'silent' }),
      ...(wait ? { replicas: replicaWait(client, { timeoutMs: 1000 }) } : {}),
    });
    let acked = 0;
    const src: ResultSource = { agent: 'a', sessionId: 's', ack: (ids) => (acked += ids.length) };
    const ms: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let b = 0; b < batches; b++) {
      const started = performance.now();
      forwarder.pushAll(
        src,
        Array.from({ length: size }, (_, i) => result(`r-${wait}-${b}-${i}`)),
      );
      await forwarder.idle();
      ms.push(performance.now() - started);
    }
    const cpu = process.cpuUsage(cpu0);
    ms.sort((a, b) => a - b);
    const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]?.toFixed(3);
    console.log(
      `${wait ? 'with WAIT 1   ' : 'without WAIT  '} ${batches} batches × ${size}: median ${at(0.5)} ms, p99 ${at(0.99)} ms, ` +
        `CPU ${((cpu.user + cpu.system) / 1000 / batches).toFixed(3)} ms/batch, acked ${acked}`,
    );
    await queue.obliterate({ force: true });
    await queue.close();
    client.disconnect();
  }
} finally {
  await s.stop();
}
