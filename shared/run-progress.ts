/**
 * The progress of a manual reconcile, as the run store keeps it (store/runs/redis-run-store.ts)
 * and `GET /api/v1/reconcile/{id}` returns it. Types only, so the CLI reads the same shape the
 * server writes.
 */

export type RunTarget =
  | { target: 'all' }
  | { target: 'agent'; name: string }
  | { target: 'task'; name: string };

export interface RunMeta {
  id: string;
  target: RunTarget['target'];
  name: string | null;
  created_at: string;
}

export type AgentRunState = 'pending' | 'dispatched' | 'not_connected' | 'no_tasks' | 'undeliverable';

export interface RunProgress {
  meta: RunMeta;
  done: boolean;
  agents: Record<string, AgentRunState>;
  results: { agent: string; task: string; outcome: string; execution_id: string | null }[];
  /** Executions dispatched for the run, sorted by agent then task. */
  executions: { agent: string; task: string; execution_id: string }[];
  summary: {
    targeted_agents: number;
    pending: number;
    succeeded: number;
    failed: number;
    skipped: number;
    timed_out: number;
  };
}
