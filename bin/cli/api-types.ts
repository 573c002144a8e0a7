/**
 * The shapes the CLI reads from `/api/v1` (docs/api.md). Domain types come from shared/; the
 * read models are restated here, because the CLI is a client of the wire format, not of the
 * gateway's modules. Fields added after this issue are optional, so an older server still works.
 */
import type { OutputRecord } from '../../gateway/output-publisher.js';
import type { FlukeEvent } from '../../shared/events.js';
import type { TaskStatus } from '../../shared/status.js';
import type { CompiledTask, DriftPolicy, Labels, Selector } from '../../shared/types.js';

export type { FlukeEvent, OutputRecord, TaskStatus };

export interface DriftSummary {
  tasks: number;
  ok: number;
  drifted: number;
  failing: number;
  unknown: number;
}

export interface AgentView {
  name: string;
  labels: Labels;
  connected: boolean;
  gateway_id: string | null;
  session_id: string | null;
  connected_at: string | null;
  last_seen: string | null;
  agent_version: string | null;
  executors: string[];
  drift: DriftSummary;
}

export interface AgentDetail extends AgentView {
  tasks: { task: string; status: TaskStatus | null }[];
  events: FlukeEvent[];
}

export interface TaskSummaryView {
  name: string;
  description: string | null;
  policy: DriftPolicy;
  selector: Selector;
  steps: { type: string; name: string }[];
  matched_agents: number;
  status_counts: Record<string, number>;
}

export interface TaskDetail extends CompiledTask {
  policy: DriftPolicy;
  matched_agents: number;
  status_counts: Record<string, number>;
  agents: { name: string; connected: boolean; status: TaskStatus | null }[];
}

export type DriftEntry = TaskStatus & { agent: string };

export interface ReconcileAccepted {
  id: string;
  status_url: string;
}

export interface RunResult {
  agent: string;
  task: string;
  outcome: string;
  execution_id?: string | null;
}

export interface RunProgress {
  meta: { id: string; target: 'all' | 'agent' | 'task'; name: string | null; created_at: string };
  done: boolean;
  agents: Record<string, string>;
  results: RunResult[];
  /** Executions dispatched for the run, known before their results. */
  executions?: { agent: string; task: string; execution_id: string }[];
  summary: {
    targeted_agents: number;
    pending: number;
    succeeded: number;
    failed: number;
    skipped: number;
    timed_out: number;
  };
}

export interface ExecutionView {
  execution: {
    id: string;
    agent: string;
    task: string;
    done: boolean;
    outcome: string | null;
    event: FlukeEvent | null;
  };
  output: OutputRecord[];
}
