/**
 * The in-process twin of the registry: one object is both the gateway's write port (Registry) and
 * the readers' AgentDirectory, over the same maps RedisRegistry and RedisAgentDirectory keep in
 * Redis (entries with a TTL, the agent index, known agents and their labels, announced gateways).
 * Checked by the same contract (test/store-registry.contract.ts).
 */
import type { RegistryEntry } from '../../shared/registry-entry.js';
import type { Labels } from '../../shared/types.js';
import type { AgentDirectory } from './agent-directory.js';
import type { HeartbeatOutcome, PreviousSession, Registry } from './registry.js';

export interface MemoryRegistryOptions {
  /** An entry's TTL (RedisRegistry's `ttlMs`). */
  ttlMs: number;
  /** Index entries older than this are pruned on read (RedisAgentDirectory's). */
  staleAfterMs: number;
  /** How long an agent stays known after it was last seen. */
  knownForMs: number;
  /** Known agents kept; the least recently seen are dropped at registration (RedisRegistry's). */
  maxKnownAgents?: number;
  now?: () => number;
}

export class MemoryRegistry implements Registry, AgentDirectory {
  private readonly entries = new Map<string, { entry: RegistryEntry; expiresAt: number }>();
  /** name → last_seen: the agent index and the known agents. */
  private readonly index = new Map<string, number>();
  private readonly knownAt = new Map<string, number>();
  private readonly labels = new Map<string, Labels>();
  private readonly gateways = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: MemoryRegistryOptions) {
    this.now = o.now ?? Date.now;
  }

  async register(entry: RegistryEntry): Promise<PreviousSession | null> {
    const prev = this.live(entry.name);
    this.write(entry);
    this.index.set(entry.name, entry.last_seen);
    this.knownAt.set(entry.name, entry.last_seen);
    this.labels.set(entry.name, structuredClone(entry.labels));
    this.trimKnown();
    if (!prev || prev.session_id === entry.session_id) return null;
    return { session_id: prev.session_id, gateway_id: prev.gateway_id };
  }

  /** Like the Redis script: drop the least recently seen (ties by name) beyond the cap. */
  private trimKnown(): void {
    const over = this.knownAt.size - (this.o.maxKnownAgents ?? Number.POSITIVE_INFINITY);
    if (over <= 0) return;
    const oldest = [...this.knownAt].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).slice(0, over);
    for (const [name] of oldest) {
      this.knownAt.delete(name);
      this.labels.delete(name);
    }
  }

  async heartbeat(entries: readonly RegistryEntry[]): Promise<HeartbeatOutcome[]> {
    return entries.map((e) => {
      // Like the one ZADD of the batch: every entry's index score moves, whoever owns it.
      this.index.set(e.name, e.last_seen);
      const current = this.live(e.name);
      if (current && current.session_id !== e.session_id) return 'replaced';
      if (current) {
        this.write({ ...current, last_seen: e.last_seen, running: [...e.running] });
        return 'ok';
      }
      this.write(e);
      this.knownAt.set(e.name, e.last_seen);
      this.labels.set(e.name, structuredClone(e.labels));
      return 'rebuilt';
    });
  }

  async deregister(name: string, sessionId: string): Promise<boolean> {
    if (this.live(name)?.session_id !== sessionId) return false;
    this.entries.delete(name);
    this.index.delete(name);
    this.knownAt.set(name, this.now());
    return true;
  }

  async get(name: string): Promise<RegistryEntry | null> {
    const entry = this.live(name);
    return entry ? structuredClone(entry) : null;
  }

  async announce(gatewayId: string, now: number): Promise<void> {
    this.gateways.set(gatewayId, now);
  }

  async retire(gatewayId: string): Promise<void> {
    this.gateways.delete(gatewayId);
  }

  /** When a gateway last announced itself (the memory inbox checks it before delivering). */
  gatewaySeen(gatewayId: string): number | undefined {
    return this.gateways.get(gatewayId);
  }

  async names(): Promise<string[]> {
    prune(this.index, this.now() - this.o.staleAfterMs);
    // ZRANGE order: by score, then by name.
    return [...this.index].sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0)).map(([n]) => n);
  }

  async list(): Promise<RegistryEntry[]> {
    const out: RegistryEntry[] = [];
    for (const name of await this.names()) {
      const entry = this.live(name);
      if (entry) out.push(structuredClone(entry));
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async known(): Promise<Map<string, number>> {
    for (const name of prune(this.knownAt, this.now() - this.o.knownForMs)) this.labels.delete(name);
    return new Map(this.knownAt);
  }

  async knownLabels(names: readonly string[]): Promise<Map<string, Labels>> {
    const out = new Map<string, Labels>();
    for (const name of names) {
      const labels = this.labels.get(name);
      if (labels) out.set(name, structuredClone(labels));
    }
    return out;
  }

  /** What the end of an entry's TTL (or a FLUSHALL of it) does. */
  expire(name: string): void {
    this.entries.delete(name);
  }

  private live(name: string): RegistryEntry | null {
    const found = this.entries.get(name);
    if (!found) return null;
    if (found.expiresAt > this.now()) return found.entry;
    this.entries.delete(name);
    return null;
  }

  private write(entry: RegistryEntry): void {
    this.entries.set(entry.name, { entry: structuredClone(entry), expiresAt: this.now() + this.o.ttlMs });
  }
}

/** Deletes the names scored below `cutoff`; returns them. */
function prune(scores: Map<string, number>, cutoff: number): string[] {
  const gone = [...scores].filter(([, at]) => at < cutoff).map(([name]) => name);
  for (const name of gone) scores.delete(name);
  return gone;
}
