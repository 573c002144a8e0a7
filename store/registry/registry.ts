import type { RegistryEntry } from '../../shared/registry-entry.js';

/** What a heartbeat found in the registry. */
export type HeartbeatOutcome =
  /** The entry was ours: last_seen and TTL renewed. */
  | 'ok'
  /** The entry was gone (TTL lapsed, FLUSHALL, Redis restart): rewritten whole from memory. */
  | 'rebuilt'
  /** Another session owns the name now: this one must close. */
  | 'replaced';

export interface PreviousSession {
  session_id: string;
  gateway_id: string;
}

/**
 * The agent registry's write port (the gateway's; readers use agent-directory.ts).
 *
 * Glossary: an *entry* says which gateway and *session* hold an agent name now; it lives as long
 * as heartbeats renew it. *Registering* replaces any other session's entry; a *heartbeat* renews
 * ours, *rebuilds* it when it vanished (TTL, FLUSHALL), or learns it was *replaced*. Gateways
 * *announce* themselves so senders know which are alive. Every write is guarded by session_id so that a late write from an
 * old session (a heartbeat in flight, a close after replacement) never clobbers a newer one.
 */
export interface Registry {
  /** Write the entry (replacing any other session's) and return the session it replaced. */
  register(entry: RegistryEntry): Promise<PreviousSession | null>;
  /** Renew many entries at once; one outcome per entry, in order. `last_seen` is taken from the entry. */
  heartbeat(entries: readonly RegistryEntry[]): Promise<HeartbeatOutcome[]>;
  /** Remove the entry only if it still belongs to `sessionId`. True if removed. */
  deregister(name: string, sessionId: string): Promise<boolean>;
  get(name: string): Promise<RegistryEntry | null>;
  /** Gateways announce themselves so operators (and readers) can see which are alive. */
  announce(gatewayId: string, now: number): Promise<void>;
  retire(gatewayId: string): Promise<void>;
}
