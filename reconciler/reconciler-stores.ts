/**
 * The reconciler's Redis connections and the stores on them. Handlers run on `store`; dispatch
 * (plan, record, send) on a connection of its own.
 */
import type { ServerConfig } from '../shared/config/types.js';
import type { Keys } from '../shared/keys.js';
import { liveness } from '../shared/liveness.js';
import type { MetricsSink } from '../shared/metrics.js';
import { RedisStateStore } from '../store/desired-state/redis-state-store.js';
import { InboxBatcher } from '../store/inbox/gateway-inbox.js';
import type { InstructionStore } from '../store/instructions/instruction-store.js';
import { MeteredInstructionStore } from '../store/instructions/metered-instruction-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { duplicateClient, type RedisClient } from '../store/redis/client.js';
import { RedisAgentDirectory } from '../store/registry/redis-agent-directory.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import type { RunStore } from '../store/runs/run-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';

export interface ReconcilerStores {
  /** Auto-pipelined: the commands of concurrent handlers share one socket write per tick. */
  store: RedisClient;
  dispatch: RedisClient;
  inbox: InboxBatcher;
  state: RedisStateStore;
  statuses: RedisStatusStore;
  runs: RunStore;
  directory: RedisAgentDirectory;
  instructions: MeteredInstructionStore;
  /** The same stores on the dispatch connection. */
  onDispatch: {
    statuses: RedisStatusStore;
    runs: RunStore;
    directory: RedisAgentDirectory;
    instructions: InstructionStore;
  };
  close(): void;
}

export function openReconcilerStores(
  redis: RedisClient,
  config: ServerConfig,
  keys: Keys,
  metrics: MetricsSink,
): ReconcilerStores {
  // Its MULTIs do not copy the scripts BullMQ loads onto its clients.
  const store = duplicateClient(redis, { enableAutoPipelining: true });
  store.on('error', () => {}); // the main client logs an outage once
  // ioredis runs one auto-pipeline at a time per connection: sharing one with a results backlog
  // made every step of a 500-agent `agents` job wait behind the results handlers' round trips
  // (15 s per job at 10,000 agents).
  const dispatch = duplicateClient(redis, { enableAutoPipelining: true });
  dispatch.on('error', () => {});
  const hb = config.heartbeat_interval_ms;
  // A gateway announces itself every heartbeat, as its agents renew their registry entries; three
  // missed means it (or the agent's index entry) is gone.
  const gatewayStaleMs = liveness(hb).gatewayStaleMs;
  const ttlMs = config.event_store.redis.ttl_ms;
  /** The stores both connections carry alike. */
  const storesOn = (client: RedisClient) => ({
    statuses: new RedisStatusStore({ redis: client, keys, ttlMs }),
    runs: new RedisRunStore({ redis: client, keys }),
    directory: new RedisAgentDirectory({
      redis: client,
      keys,
      staleAfterMs: gatewayStaleMs,
      knownForMs: ttlMs,
    }),
  });
  return {
    store,
    dispatch,
    inbox: new InboxBatcher(dispatch, keys, gatewayStaleMs),
    state: new RedisStateStore({ redis: store, keys }),
    ...storesOn(store),
    instructions: new MeteredInstructionStore({
      store: new RedisInstructionStore({ redis: store, keys }),
      metrics,
    }),
    // Dispatch only saves instructions: nothing there for the metered store to count.
    onDispatch: { ...storesOn(dispatch), instructions: new RedisInstructionStore({ redis: dispatch, keys }) },
    close() {
      store.disconnect();
      dispatch.disconnect();
    },
  };
}
