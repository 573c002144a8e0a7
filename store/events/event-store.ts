/**
 * The event store port: recent operational history (docs/events.md). Two backends: `memory`
 * (ring buffer per agent, all-in-one `fluke server` only) and `redis` (TTL, bounded indexes).
 *
 * Glossary: an *event* is recorded once per id; *indexes* (per agent, per task, global) order
 * events newest first by their *sort key* (time, then id); a *page* of a query carries an opaque
 * *cursor* to the next one.
 */
import type { EventPage, EventQuery, FlukeEvent } from '../../shared/events.js';

export interface EventStore {
  /**
   * Stores the event once per id: recording an id again (a BullMQ retry) changes nothing.
   * Resolves true when the event was new.
   */
  record(event: FlukeEvent): Promise<boolean>;
  /**
   * record() for many events in few round trips (one per agent and per index): the same result
   * as recording them one by one, in order. Resolves, per event, whether it was new.
   */
  recordMany(events: readonly FlukeEvent[]): Promise<boolean[]>;
  /**
   * Newest first, by agent, by task, both, or all. Throws InvalidCursorError for a cursor this
   * store did not hand out.
   */
  query(query: EventQuery): Promise<EventPage>;
  /** One event of one agent by id (what an execution produced), or null if gone or never stored. */
  get(agent: string, id: string): Promise<FlukeEvent | null>;
  /** Events currently held (approximate for Redis: see docs/events.md), for metrics. */
  size(): Promise<number>;
  close(): Promise<void>;
}
