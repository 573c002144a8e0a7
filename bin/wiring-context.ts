/**
 * What every part of the process wiring shares: the config, the clients built once per process,
 * and the list of closers that `Services.close()` runs in reverse (last started, first stopped).
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../shared/config/types.js';
import type { Keys } from '../shared/keys.js';
import type { EventStore } from '../store/events/event-store.js';
import type { RedisClient } from '../store/redis/client.js';
import type { EvictionWatch } from '../store/redis/eviction-watch.js';
import type { ShutdownStep } from './shutdown.js';

export type Role = 'server' | 'gateway' | 'reconciler';

export interface WiringContext {
  config: ServerConfig;
  redis: RedisClient;
  keys: Keys;
  events: EventStore;
  /** The periodic eviction-policy check of this process's Redis servers. */
  eviction: EvictionWatch;
  logger: Logger;
  /**
   * The HMAC key of agent credentials and instruction ids (store/identity/identity-key.ts),
   * shared by the gateway and the reconciler; updated in place if Redis lost it and another
   * process set a new one first.
   */
  identityKey: Buffer;
  /** Named, so a shutdown that passes its deadline can say which step hung. */
  closers: ShutdownStep[];
}
