/**
 * Listens on this gateway's Redis channel. Uses its own connection (a subscribed ioredis client
 * can do nothing else); ioredis re-subscribes by itself after a reconnect (autoResubscribe), which
 * the gateway tests check by restarting Redis.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.js';

export class ChannelSubscriber {
  private lost = false;

  constructor(
    private readonly sub: Redis,
    private readonly channel: string,
    private readonly onMessage: (text: string) => void,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.sub.on('message', (channel: string, text: string) => {
      if (channel === this.channel) this.onMessage(text);
    });
    this.sub.on('error', (err: Error) => {
      if (!this.lost) this.logger.warn({ err: err.message }, 'instruction channel connection lost');
      this.lost = true;
    });
    this.sub.on('ready', () => {
      if (this.lost) this.logger.info({ channel: this.channel }, 'instruction channel re-subscribed');
      this.lost = false;
    });
    await this.sub.subscribe(this.channel);
  }

  async stop(): Promise<void> {
    try {
      await this.sub.unsubscribe(this.channel);
    } catch {
      // Redis may be gone at shutdown; disconnecting is all that matters then.
    }
    this.sub.disconnect();
  }
}
