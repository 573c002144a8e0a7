/**
 * The status store port: the last status of each (agent, task) and its open drift episode
 * (shared/status.ts). Redis holds it with a TTL; the memory twin backs handler unit tests.
 * Every method is idempotent, because result jobs are delivered at least once.
 *
 * Glossary: a *status* is the last outcome of a task on an agent; a *problem* is a status that is
 * drifted or failing (listed across agents); a *drift episode* is open from the first drift of a
 * task until it converges, and *claims* each alert event once (markAlerted); a *snapshot* is one
 * agent's statuses and episodes read together.
 */
import type { AlertEvent } from '../../shared/alerts.js';
import type { DriftEpisode, NewDriftEpisode, ProblemEntry, TaskStatus } from '../../shared/status.js';

export interface AgentSnapshot {
  statuses: Map<string, TaskStatus>;
  episodes: Map<string, DriftEpisode>;
}

/** One agent's part of setStatusesMany: setStatuses's arguments, and what it read before. */
export interface StatusWrite {
  agent: string;
  statuses: readonly TaskStatus[];
  /**
   * What the same caller read for those tasks before (its snapshot), when given: a task whose
   * previous status was there and not a problem has no problem-index entry to drop, so the store
   * may skip that removal (a leftover entry is only ever an extra one, which reads prune).
   */
  previous?: ReadonlyMap<string, TaskStatus | null>;
}

export interface StatusStore {
  /** Replaces the (agent, task) status and refreshes the agent's TTL. */
  setStatus(agent: string, status: TaskStatus): Promise<void>;
  /** setStatus for many tasks of one agent in one write (later entries for a task win). */
  setStatuses(agent: string, statuses: readonly TaskStatus[]): Promise<void>;
  /**
   * setStatuses for many agents in few round trips (a results job's agents), settled per agent:
   * one agent's failure does not fail the others' writes.
   */
  setStatusesMany(writes: ReadonlyArray<StatusWrite>): Promise<PromiseSettledResult<void>[]>;
  getStatus(agent: string, task: string): Promise<TaskStatus | null>;
  /** Every status and open episode of one agent, read at once (what getStatus/getEpisode return). */
  snapshot(agent: string): Promise<AgentSnapshot>;
  /**
   * snapshot() of many agents in few round trips, in order. `only[i]`, when given and not empty,
   * limits agent i's statuses to those tasks (its episodes are all read).
   */
  snapshots(
    agents: readonly string[],
    only?: ReadonlyArray<readonly string[] | undefined>,
  ): Promise<AgentSnapshot[]>;
  /** One agent's statuses, sorted by task. */
  listStatuses(agent: string): Promise<TaskStatus[]>;
  /** Every (agent, task) whose last status is drifted or failing, sorted by agent then task. */
  listProblems(): Promise<ProblemEntry[]>;
  /** True only for the call that opened it: a second open of the same task (any id) is refused. */
  openEpisode(agent: string, episode: NewDriftEpisode): Promise<boolean>;
  getEpisode(agent: string, task: string): Promise<DriftEpisode | null>;
  /**
   * Claims `event` for the open episode `episodeId`: true only the first time, and false when that
   * episode is no longer open, so each alert goes out once per episode even under racing workers.
   */
  markAlerted(agent: string, task: string, episodeId: string, event: AlertEvent): Promise<boolean>;
  /** Closes the task's episode (only if it is `episodeId`, when given). True if one was closed. */
  closeEpisode(agent: string, task: string, episodeId?: string): Promise<boolean>;
  /** Drops statuses and episodes of the agent's tasks not in `keep` (no longer matched); returns them sorted. */
  forgetTasks(agent: string, keep: readonly string[]): Promise<string[]>;
  close(): Promise<void>;
}
