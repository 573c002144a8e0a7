/**
 * Read side of the registry, for reconcilers and the HTTP API: who is connected now, and who was
 * seen recently. The gateway writes it (gateway/redis-registry.ts); this only reads.
 */
import type { Redis } from 'ioredis';
import { decodeRegistryEntry, type RegistryEntry } from '../gateway/registry-entry.js';
import type { Keys } from '../shared/keys.js';

export interface AgentDirectory {
  get(name: string): Promise<RegistryEntry | null>;
  /** Names in the agent index (connected, or expired but not yet pruned). */
  names(): Promise<string[]>;
  /** Registry entries of every connected agent, sorted by name. */
  list(): Promise<RegistryEntry[]>;
  /** Every agent seen within the retention window: name → last-seen ms. */
  known(): Promise<Map<string, number>>;
}

const BATCH = 500;

export class RedisAgentDirectory implements AgentDirectory {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Index entries older than this are certainly expired (3× heartbeat plus slack). */
    private readonly staleAfterMs: number,
    /** How long an agent stays "known" after it was last seen. */
    private readonly knownForMs: number,
  ) {}

  async get(name: string): Promise<RegistryEntry | null> {
    return decodeRegistryEntry(await this.redis.hgetall(this.keys.agent(name)));
  }

  async names(): Promise<string[]> {
    const cutoff = Date.now() - this.staleAfterMs;
    // Pruning here keeps the index bounded without a sweeper process.
    await this.redis.zremrangebyscore(this.keys.agentIndex(), '-inf', `(${cutoff}`);
    return this.redis.zrange(this.keys.agentIndex(), 0, '-1');
  }

  async list(): Promise<RegistryEntry[]> {
    const names = await this.names();
    const entries: RegistryEntry[] = [];
    for (let i = 0; i < names.length; i += BATCH) {
      const pipe = this.redis.pipeline();
      for (const name of names.slice(i, i + BATCH)) pipe.hgetall(this.keys.agent(name));
      for (const [err, hash] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        const entry = decodeRegistryEntry(hash as Record<string, string>);
        if (entry) entries.push(entry);
      }
    }
    return entries.sort((a, b) => a.name.localeCompare(b.name));
  }

  async known(): Promise<Map<string, number>> {
    const cutoff = Date.now() - this.knownForMs;
    await this.redis.zremrangebyscore(this.keys.knownAgents(), '-inf', `(${cutoff}`);
    const flat = (await this.redis.zrange(
      this.keys.knownAgents(),
      0,
      '-1',
      'WITHSCORES',
    )) as unknown as string[];
    const out = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i] as string, Number(flat[i + 1]));
    return out;
  }
}
