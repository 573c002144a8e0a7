/**
 * One Redis subscriber connection per gateway for every live-output viewer: channels are
 * subscribed when their first viewer arrives and unsubscribed when their last one leaves
 * (reference counted), so a thousand viewers cost one connection, not a thousand. The connection
 * is made on first use; a gateway nobody watches holds none.
 */

import type { Logger } from 'pino';
import { coerceError } from '../../shared/errors.js';
import type { RedisClient } from '../redis/client.js';

type Listener = (message: string) => void;

interface Channel {
  listeners: Set<Listener>;
  ready: Promise<void>;
}

export class ChannelHub {
  private client: RedisClient | null = null;
  private readonly channels = new Map<string, Channel>();
  private closed = false;

  constructor(
    /** Makes the dedicated connection (it goes into subscriber mode: nothing else may use it). */
    private readonly connect: () => RedisClient,
    private readonly logger: Logger,
  ) {}

  /** Channels subscribed now (for tests and metrics). */
  get size(): number {
    return this.channels.size;
  }

  private redis(): RedisClient {
    if (this.client) return this.client;
    const client = this.connect();
    let failing = false;
    client.on('error', (err: unknown) => {
      if (!failing) this.logger.warn({ err: coerceError(err).message }, 'output subscriber connection error');
      failing = true;
    });
    client.on('ready', () => {
      failing = false;
    });
    client.on('message', (channel: string, message: string) => {
      const entry = this.channels.get(channel);
      if (!entry) return;
      for (const listener of entry.listeners) {
        try {
          listener(message);
        } catch (err) {
          this.logger.error({ err: coerceError(err).message, channel }, 'output listener failed');
        }
      }
    });
    this.client = client;
    return client;
  }

  /**
   * Resolves once messages on `channel` reach `listener` (the SUBSCRIBE is confirmed), with the
   * function that removes it. Idempotent removal.
   */
  async subscribe(channel: string, listener: Listener): Promise<() => void> {
    if (this.closed) throw new Error('output subscriber is closed');
    let entry = this.channels.get(channel);
    if (!entry) {
      const redis = this.redis();
      entry = { listeners: new Set(), ready: redis.subscribe(channel).then(() => undefined) };
      this.channels.set(channel, entry);
    }
    const current = entry;
    current.listeners.add(listener);
    let removed = false;
    const remove = () => {
      if (removed) return;
      removed = true;
      current.listeners.delete(listener);
      if (current.listeners.size > 0 || this.channels.get(channel) !== current) return;
      this.channels.delete(channel);
      // Same connection, so a later SUBSCRIBE of this channel is ordered after this.
      this.client?.unsubscribe(channel).catch(() => {});
    };
    try {
      await current.ready;
    } catch (err) {
      remove();
      throw err;
    }
    return remove;
  }

  close(): void {
    this.closed = true;
    this.channels.clear();
    this.client?.disconnect();
    this.client = null;
  }
}
