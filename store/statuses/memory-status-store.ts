/** The in-memory twin of RedisStatusStore, with the same TTL semantics on an injectable clock. */
import type { AlertEvent } from '../../shared/alerts.js';
import {
  type DriftEpisode,
  isProblem,
  type NewDriftEpisode,
  type ProblemEntry,
  sortAlerts,
  type TaskStatus,
} from '../../shared/status.js';
import type { AgentSnapshot, StatusStore, StatusWrite } from './status-store.js';

interface AgentState {
  statuses: Map<string, TaskStatus>;
  episodes: Map<string, { episode: NewDriftEpisode; alerts: Set<AlertEvent> }>;
  /** Like the Redis hashes' TTL: refreshed by every write for the agent. */
  expiresAt: number;
}

export interface MemoryStatusStoreOptions {
  ttlMs: number;
  now?: () => number;
}

export class MemoryStatusStore implements StatusStore {
  private readonly agents = new Map<string, AgentState>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: MemoryStatusStoreOptions) {
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
  }

  async setStatus(agent: string, status: TaskStatus): Promise<void> {
    this.touch(agent).statuses.set(status.task, structuredClone(status));
  }

  async setStatuses(agent: string, statuses: readonly TaskStatus[]): Promise<void> {
    if (statuses.length === 0) return;
    const state = this.touch(agent);
    for (const status of statuses) state.statuses.set(status.task, structuredClone(status));
  }

  async setStatusesMany(writes: ReadonlyArray<StatusWrite>): Promise<PromiseSettledResult<void>[]> {
    // `previous` is a hint for the Redis index; nothing to skip here.
    return Promise.allSettled(writes.map((w) => this.setStatuses(w.agent, w.statuses)));
  }

  async snapshots(
    agents: readonly string[],
    only?: ReadonlyArray<readonly string[] | undefined>,
  ): Promise<AgentSnapshot[]> {
    return Promise.all(
      agents.map(async (agent, i) => {
        const snap = await this.snapshot(agent);
        const tasks = only?.[i];
        if (tasks && tasks.length > 0) {
          for (const task of [...snap.statuses.keys()]) if (!tasks.includes(task)) snap.statuses.delete(task);
        }
        return snap;
      }),
    );
  }

  async snapshot(agent: string): Promise<AgentSnapshot> {
    const state = this.live(agent);
    const out: AgentSnapshot = { statuses: new Map(), episodes: new Map() };
    if (!state) return out;
    for (const [task, status] of state.statuses) out.statuses.set(task, structuredClone(status));
    for (const [task, open] of state.episodes) {
      out.episodes.set(task, { ...structuredClone(open.episode), alerts: sortAlerts(open.alerts) });
    }
    return out;
  }

  async getStatus(agent: string, task: string): Promise<TaskStatus | null> {
    const status = this.live(agent)?.statuses.get(task);
    return status ? structuredClone(status) : null;
  }

  async listStatuses(agent: string): Promise<TaskStatus[]> {
    const statuses = [...(this.live(agent)?.statuses.values() ?? [])];
    return statuses.sort((a, b) => compare(a.task, b.task)).map((s) => structuredClone(s));
  }

  async listProblems(): Promise<ProblemEntry[]> {
    const out: ProblemEntry[] = [];
    for (const agent of [...this.agents.keys()].sort(compare)) {
      for (const status of await this.listStatuses(agent)) {
        if (isProblem(status.outcome)) out.push({ agent, status });
      }
    }
    return out;
  }

  async openEpisode(agent: string, episode: NewDriftEpisode): Promise<boolean> {
    const state = this.touch(agent);
    if (state.episodes.has(episode.task)) return false;
    state.episodes.set(episode.task, { episode: structuredClone(episode), alerts: new Set() });
    return true;
  }

  async getEpisode(agent: string, task: string): Promise<DriftEpisode | null> {
    const open = this.live(agent)?.episodes.get(task);
    if (!open) return null;
    return { ...structuredClone(open.episode), alerts: sortAlerts(open.alerts) };
  }

  async markAlerted(agent: string, task: string, episodeId: string, event: AlertEvent): Promise<boolean> {
    const open = this.live(agent)?.episodes.get(task);
    if (!open || open.episode.id !== episodeId || open.alerts.has(event)) return false;
    open.alerts.add(event);
    this.touch(agent);
    return true;
  }

  async closeEpisode(agent: string, task: string, episodeId?: string): Promise<boolean> {
    const state = this.live(agent);
    const open = state?.episodes.get(task);
    if (!state || !open || (episodeId !== undefined && open.episode.id !== episodeId)) return false;
    state.episodes.delete(task);
    return true;
  }

  async forgetTasks(agent: string, keep: readonly string[]): Promise<string[]> {
    const state = this.live(agent);
    if (!state) return [];
    const kept = new Set(keep);
    const gone = new Set<string>();
    for (const map of [state.statuses, state.episodes]) {
      for (const task of map.keys()) {
        if (kept.has(task)) continue;
        map.delete(task);
        gone.add(task);
      }
    }
    return [...gone].sort(compare);
  }

  async close(): Promise<void> {
    this.agents.clear();
  }

  private live(agent: string): AgentState | null {
    const state = this.agents.get(agent);
    if (!state) return null;
    if (state.expiresAt <= this.now()) {
      this.agents.delete(agent);
      return null;
    }
    return state;
  }

  private touch(agent: string): AgentState {
    let state = this.live(agent);
    if (!state) {
      state = { statuses: new Map(), episodes: new Map(), expiresAt: 0 };
      this.agents.set(agent, state);
    }
    state.expiresAt = this.now() + this.ttlMs;
    return state;
  }
}

/** Byte order, as the Redis twin sorts. */
function compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
