/**
 * The gateway inbox in Redis: one stream per gateway (gateway-inbox.ts has the script, the
 * batcher and the reader this puts behind the port).
 */

import type { Keys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../redis/client.js';
import { InboxReader, sendToGateway } from './gateway-inbox.js';
import type { GatewayInbox } from './inbox.js';

export interface RedisGatewayInboxOptions {
  redis: RedisClient;
  keys: Keys;
  logger: Logger;
  /** A dedicated connection per listener: XREAD BLOCK holds it. */
  connect: () => RedisClient;
}

export class RedisGatewayInbox implements GatewayInbox {
  constructor(private readonly o: RedisGatewayInboxOptions) {}

  send(
    gatewayId: string,
    text: string | readonly string[],
    aliveSince: number | null = null,
  ): Promise<boolean> {
    return sendToGateway(this.o.redis, this.o.keys, gatewayId, text, aliveSince);
  }

  async listen(gatewayId: string, onMessage: (text: string) => void): Promise<() => Promise<void>> {
    const reader = new InboxReader(
      this.o.connect(),
      this.o.keys.gatewayInbox(gatewayId),
      onMessage,
      this.o.logger,
    );
    await reader.start();
    return () => reader.stop();
  }
}
