import {
  clampLimit,
  decodeCursor,
  type EventPage,
  type EventQuery,
  encodeCursor,
  eventSortKey,
  FlukeEvent,
  parseSortKey,
  sortKeyFloor,
} from '../../shared/events.js';
import type { Keys } from '../../shared/keys.js';
import { parseJsonWith } from '../../shared/parse-json.js';
import type { RedisClient } from '../redis/client.js';
import { canPipeline, type Executable, execAll } from '../redis/pipeline.js';
import { type EventCommands, withCommands } from './event-scripts.js';
import type { EventStore } from './event-store.js';

export interface RedisEventStoreOptions {
  redis: RedisClient;
  keys: Keys;
  /** `event_store.redis.ttl`. */
  ttlMs: number;
  /** Events kept per agent; the oldest are deleted as new ones arrive. */
  maxEventsPerAgent?: number;
  /** Entries kept in each per-task index. */
  maxTaskIndex?: number;
  /** Entries kept in the global index (`GET /events` with no filter). */
  maxAllIndex?: number;
  /** Whether close() quits the client (a dedicated `event_store.redis.url` connection). */
  ownsClient?: boolean;
  now?: () => number;
}

/** Entries an index may pass its bound by before a write trims it (a tenth of the bound). */
function slackOf(max: number): number {
  return Math.floor(max / 10);
}

export class RedisEventStore implements EventStore {
  private readonly redis: RedisClient & EventCommands;
  private readonly keys: Keys;
  private readonly ttlMs: number;
  private readonly maxPerAgent: number;
  private readonly maxTask: number;
  private readonly maxAll: number;
  private readonly ownsClient: boolean;
  private readonly now: () => number;

  constructor(options: RedisEventStoreOptions) {
    if (!(options.ttlMs >= 1)) throw new RangeError('ttlMs must be positive');
    this.redis = withCommands(options.redis);
    this.keys = options.keys;
    this.ttlMs = Math.floor(options.ttlMs);
    this.maxPerAgent = positive(options.maxEventsPerAgent ?? 1000, 'maxEventsPerAgent');
    this.maxTask = positive(options.maxTaskIndex ?? 10_000, 'maxTaskIndex');
    this.maxAll = positive(options.maxAllIndex ?? 10_000, 'maxAllIndex');
    this.ownsClient = options.ownsClient ?? false;
    this.now = options.now ?? Date.now;
  }

  async get(agent: string, id: string): Promise<FlukeEvent | null> {
    return parseEvent(await this.redis.get(this.keys.agentEvent(agent, id)));
  }

  /** One event is a batch of one: the same script, the same index writes. */
  async record(event: FlukeEvent): Promise<boolean> {
    const [created] = await this.recordMany([event]);
    return created === true;
  }

  recordMany(events: readonly FlukeEvent[]): Promise<boolean[]> {
    if (events.length === 0) return Promise.resolve([]);
    // Serialised here: only strings wait for the replies, not the events (a results job's many
    // agents' events would otherwise stay on the heap across both round trips).
    const tasks = events.map((e) => e.task);
    const eventKeys = events.map((e) => this.keys.agentEvent(e.agent, e.id));
    const members = events.map((e) => eventSortKey(e));
    const agents = events.map((e) => e.agent);
    const json = events.map((e) => JSON.stringify(e));
    return this.writeMany(tasks, eventKeys, members, agents, json);
  }

  private async writeMany(
    tasks: readonly string[],
    eventKeys: readonly string[],
    members: string[],
    agents: readonly string[],
    json: Array<string | null>,
  ): Promise<boolean[]> {
    const n = tasks.length;
    const floor = this.floor();
    const created = new Array<boolean>(n).fill(false);
    // Per agent (one slot): the first occurrence of an id records it; a later one is a repeat.
    const byAgent = new Map<string, number[]>();
    const first = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const key = eventKeys[i] as string;
      if (first.has(key)) continue;
      first.set(key, i);
      const agent = agents[i] as string;
      const list = byAgent.get(agent);
      if (list) list.push(i);
      else byAgent.set(agent, [i]);
    }
    // Every agent's events in one pipeline (one script call per agent and chunk).
    const calls: number[][] = [];
    const replies = await this.pipelined(
      [...byAgent].flatMap(([agent, idx]) => {
        const out: Array<Array<string | number>> = [];
        for (let c = 0; c < idx.length; c += RECORD_CHUNK) {
          const chunk = idx.slice(c, c + RECORD_CHUNK);
          calls.push(chunk);
          const args: Array<string | number> = [chunk.length + 1, this.keys.agentEvents(agent)];
          for (const i of chunk) args.push(eventKeys[i] as string);
          args.push(
            this.ttlMs,
            this.maxPerAgent,
            this.keys.agentEvent(agent, ''),
            AT_AND_SEPARATORS + Buffer.byteLength(agent, 'utf8'),
            floor,
          );
          for (const i of chunk) {
            args.push(json[i] as string, members[i] as string);
            json[i] = null; // held by the command now
          }
          out.push(args);
        }
        return out;
      }),
      'flukeEventRecordMany',
    );
    calls.forEach((chunk, c) => {
      const reply = replies[c];
      const per = Array.isArray(reply) ? reply : [];
      chunk.forEach((i, j) => {
        if (per[j] === 1) created[i] = true;
        else {
          const stored = parseEvent(per[j]);
          if (stored) members[i] = eventSortKey(stored);
        }
      });
    });
    for (let i = 0; i < n; i++) {
      const at = first.get(eventKeys[i] as string);
      if (at !== undefined && at !== i) members[i] = members[at] as string;
    }
    // Indexes after the events (as record() does); each index once, every member of it at once,
    // all in one pipeline.
    const byTask = new Map<string, Set<string>>();
    for (let i = 0; i < n; i++) {
      const task = tasks[i] as string;
      const set = byTask.get(task);
      if (set) set.add(members[i] as string);
      else byTask.set(task, new Set([members[i] as string]));
    }
    const indexCalls: Array<Array<string | number>> = [];
    const index = (key: string, all: string[], max: number) => {
      for (let c = 0; c < all.length; c += RECORD_CHUNK)
        indexCalls.push([key, floor, max, slackOf(max), this.ttlMs, ...all.slice(c, c + RECORD_CHUNK)]);
    };
    for (const [task, set] of byTask) index(this.keys.taskEvents(task), [...set], this.maxTask);
    index(this.keys.allEvents(), [...new Set(members)], this.maxAll);
    await this.pipelined(indexCalls, 'flukeEventIndex');
    return created;
  }

  /**
   * The same script once per argument list: one explicit pipeline, which resolves as soon as its
   * own replies are in (an auto-pipelined command waits for the whole tick's pipeline). Throws
   * the first error, as Promise.all over single calls would.
   */
  private async pipelined(
    calls: ReadonlyArray<Array<string | number>>,
    command: 'flukeEventRecordMany' | 'flukeEventIndex',
  ): Promise<unknown[]> {
    if (calls.length === 0) return [];
    type ScriptPipe = Record<typeof command, (...a: unknown[]) => unknown> & Executable;
    if (!canPipeline(this.redis)) {
      // A Cluster: each call its own one-slot pipeline. Not auto-pipelined: ioredis would route
      // flukeEventRecordMany by its first argument (the key count), not by its first key.
      return Promise.all(
        calls.map(async (args) => {
          const one = this.redis.pipeline() as unknown as ScriptPipe;
          one[command](...args);
          return (await execAll(one))[0];
        }),
      );
    }
    const pipe = this.redis.pipeline() as unknown as ScriptPipe;
    for (const args of calls) pipe[command](...args);
    return execAll(pipe);
  }

  async query(query: EventQuery): Promise<EventPage> {
    const limit = clampLimit(query.limit);
    const before = query.before ? decodeCursor(query.before) : null;
    const { agent, task } = query;
    // The task index names the agent in each member, so agent+task filters without reading events.
    const key =
      task !== undefined
        ? this.keys.taskEvents(task)
        : agent !== undefined
          ? this.keys.agentEvents(agent)
          : this.keys.allEvents();
    // The agent index is kept exact by RECORD_MANY_SCRIPT (which also deletes what it trims).
    await this.trim(key, task !== undefined ? this.maxTask : agent !== undefined ? null : this.maxAll);
    const batch = Math.min(500, Math.max(50, limit + 1));
    const found: { member: string; event: FlukeEvent }[] = [];
    const stale: string[] = [];
    let upper = before === null ? '+' : `(${before}`;
    while (found.length <= limit) {
      const members = await this.redis.zrevrangebylex(key, upper, '-', 'LIMIT', 0, batch);
      const last = members[members.length - 1];
      if (last === undefined) break;
      upper = `(${last}`;
      const wanted = members.flatMap((member) => {
        const parsed = parseSortKey(member);
        if (parsed === null || (agent !== undefined && parsed.agent !== agent)) return [];
        return [{ member, parsed }];
      });
      const values = await Promise.all(
        wanted.map((w) => this.redis.get(this.keys.agentEvent(w.parsed.agent, w.parsed.id))),
      );
      wanted.forEach((w, i) => {
        const raw = values[i];
        if (raw === null || raw === undefined) {
          stale.push(w.member);
          return;
        }
        // An event this version cannot read (written by another version) is skipped, not deleted.
        const event = parseEvent(raw);
        if (event && (task === undefined || event.task === task)) found.push({ member: w.member, event });
      });
      if (members.length < batch) break;
    }
    if (stale.length > 0) await this.redis.zrem(key, ...stale);
    const page = found.slice(0, limit);
    const tail = page[page.length - 1];
    return {
      events: page.map((f) => f.event),
      next_cursor: found.length > limit && tail ? encodeCursor(tail.member) : null,
    };
  }

  /** Entries in the global index: every live event up to maxAllIndex (may count a few already expired). */
  async size(): Promise<number> {
    const key = this.keys.allEvents();
    await this.trim(key, this.maxAll);
    return this.redis.zcard(key);
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    // A client waiting for a Redis that is down would hold quit() forever.
    if (this.redis.status !== 'ready') return this.redis.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private floor(): string {
    return sortKeyFloor(this.now() - this.ttlMs);
  }

  /** Before a read: drop what expired by time and what a lazy write-side trim left over the bound. */
  private async trim(key: string, max: number | null): Promise<void> {
    if (max === null) {
      await this.redis.zremrangebylex(key, '-', `(${this.floor()}`);
      return;
    }
    const replies = await this.redis
      .pipeline()
      .zremrangebylex(key, '-', `(${this.floor()}`)
      .zremrangebyrank(key, 0, -(max + 1))
      .exec();
    const failed = replies?.find(([err]) => err !== null);
    if (failed?.[0]) throw failed[0];
  }
}

/** Events or members per script call (bounded arguments). */
const RECORD_CHUNK = 200;

/** Bytes before the id in a sort key: 15 time digits and two NUL separators. */
const AT_AND_SEPARATORS = 15 + 2;

function positive(n: number, what: string): number {
  if (!(n >= 1)) throw new RangeError(`${what} must be at least 1`);
  return Math.floor(n);
}

function parseEvent(raw: unknown): FlukeEvent | null {
  return parseJsonWith(FlukeEvent, raw);
}
