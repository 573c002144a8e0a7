/**
 * The in-process twin of the gateway inbox: listeners called in order, asynchronously (as a
 * stream read would), announcements read from a MemoryRegistry. Nothing is kept for a gateway
 * nobody listens to, as nothing sent before a reader starts reaches it in Redis either.
 */
import type { GatewayInbox } from './inbox.js';

export interface MemoryGatewayInboxOptions {
  /** Where gateways announce themselves (MemoryRegistry). */
  gateways: { gatewaySeen(gatewayId: string): number | undefined };
}

export class MemoryGatewayInbox implements GatewayInbox {
  private readonly listeners = new Map<string, Set<(text: string) => void>>();

  constructor(private readonly o: MemoryGatewayInboxOptions) {}

  async send(
    gatewayId: string,
    text: string | readonly string[],
    aliveSince: number | null = null,
  ): Promise<boolean> {
    if (aliveSince !== null && !((this.o.gateways.gatewaySeen(gatewayId) ?? -Infinity) >= aliveSince))
      return false;
    const texts = typeof text === 'string' ? [text] : [...text];
    const listeners = [...(this.listeners.get(gatewayId) ?? [])];
    setImmediate(() => {
      for (const listener of listeners) for (const t of texts) listener(t);
    });
    return true;
  }

  async listen(gatewayId: string, onMessage: (text: string) => void): Promise<() => Promise<void>> {
    const set = this.listeners.get(gatewayId) ?? new Set();
    this.listeners.set(gatewayId, set);
    // A wrapper per call: the same function may listen twice.
    const listener = (text: string) => onMessage(text);
    set.add(listener);
    return async () => {
      set.delete(listener);
    };
  }
}
