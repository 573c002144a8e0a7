/**
 * In-process event history: a bounded buffer per agent, lost on restart (docs/events.md: the
 * default). Only for the all-in-one `fluke server`, where one process sees every event.
 */
import {
  clampLimit,
  compareSortKeys,
  decodeCursor,
  type EventPage,
  type EventQuery,
  encodeCursor,
  eventSortKey,
  type FlukeEvent,
} from '../../shared/events.js';
import type { EventStore } from './event-store.js';

interface Entry {
  key: string;
  event: FlukeEvent;
}

export interface MemoryEventStoreOptions {
  /** `event_store.memory.max_events_per_agent`; the oldest events go first. */
  maxEventsPerAgent: number;
}

export class MemoryEventStore implements EventStore {
  private readonly max: number;
  /** Per agent, ascending by sort key, so eviction drops the oldest as Redis trimming does. */
  private readonly byAgent = new Map<string, Entry[]>();
  private readonly ids = new Set<string>();

  constructor(options: MemoryEventStoreOptions) {
    if (!(options.maxEventsPerAgent >= 1)) throw new RangeError('maxEventsPerAgent must be at least 1');
    this.max = Math.floor(options.maxEventsPerAgent);
  }

  async recordMany(events: readonly FlukeEvent[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const event of events) out.push(await this.record(event));
    return out;
  }

  async record(event: FlukeEvent): Promise<boolean> {
    if (this.ids.has(event.id)) return false;
    const entry = { key: eventSortKey(event), event: structuredClone(event) };
    let list = this.byAgent.get(event.agent);
    if (!list) {
      list = [];
      this.byAgent.set(event.agent, list);
    }
    list.splice(insertionPoint(list, entry.key), 0, entry);
    this.ids.add(event.id);
    while (list.length > this.max) {
      const dropped = list.shift();
      if (dropped) this.ids.delete(dropped.event.id);
    }
    return true;
  }

  async query(query: EventQuery): Promise<EventPage> {
    const limit = clampLimit(query.limit);
    const before = query.before ? decodeCursor(query.before) : null;
    const pools =
      query.agent !== undefined ? [this.byAgent.get(query.agent) ?? []] : [...this.byAgent.values()];
    const hits: Entry[] = [];
    for (const pool of pools) {
      for (const entry of pool) {
        if (query.task !== undefined && entry.event.task !== query.task) continue;
        if (before !== null && compareSortKeys(entry.key, before) >= 0) continue;
        hits.push(entry);
      }
    }
    hits.sort((a, b) => compareSortKeys(b.key, a.key));
    const page = hits.slice(0, limit);
    const last = page[page.length - 1];
    return {
      events: page.map((e) => structuredClone(e.event)),
      next_cursor: hits.length > limit && last ? encodeCursor(last.key) : null,
    };
  }

  async get(agent: string, id: string): Promise<FlukeEvent | null> {
    if (!this.ids.has(id)) return null;
    const entry = this.byAgent.get(agent)?.find((e) => e.event.id === id);
    return entry ? structuredClone(entry.event) : null;
  }

  async size(): Promise<number> {
    return this.ids.size;
  }

  async close(): Promise<void> {
    this.byAgent.clear();
    this.ids.clear();
  }
}

function insertionPoint(list: readonly Entry[], key: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const at = list[mid];
    if (at && compareSortKeys(at.key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
