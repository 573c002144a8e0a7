/**
 * The run store port: progress of manual reconciles (`POST /api/v1/reconcile` →
 * `GET /api/v1/reconcile/{id}`).
 *
 * Glossary: a *run* is one manual reconcile. Its *fan-out* picks the targeted agents (each
 * `pending` until dispatched, or why not); each dispatched task of an agent is `pending` until its
 * *outcome* arrives, with the *execution* last dispatched for it. A run is *done* once the fan-out
 * ran and nothing is pending. Writes into a run that does not exist (expired) write nothing.
 */
// The progress types are declared in shared/ because the HTTP API hands them out.
import type { AgentRunState, RunMeta, RunProgress, RunTarget } from '../../shared/run-progress.js';

export type { AgentRunState, RunMeta, RunProgress, RunTarget };

export interface RunStore {
  create(meta: RunMeta): Promise<void>;
  /** Called by the fan-out: which agents the run targets. */
  setAgents(id: string, agents: string[]): Promise<void>;
  /**
   * `executionIds[i]` is the execution of `tasks[i]`, when the tasks were dispatched. Tasks
   * already in keep their outcome (a re-run of the reconcile job).
   */
  setAgentState(
    id: string,
    agent: string,
    state: AgentRunState,
    tasks?: readonly string[],
    executionIds?: readonly string[],
  ): Promise<void>;
  setOutcome(id: string, agent: string, task: string, outcome: string): Promise<void>;
  /** setOutcome for many (agent, task) of one run at once; later entries win. */
  setOutcomes(
    id: string,
    outcomes: ReadonlyArray<{ agent: string; task: string; outcome: string }>,
  ): Promise<void>;
  get(id: string): Promise<RunProgress | null>;
}
