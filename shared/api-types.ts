/**
 * The shapes of the HTTP API's answers (`/api/v1`, docs/api.md), in one place both sides import:
 * the console builds them, the CLI reads them, so the two cannot drift apart.
 */
import type { FlukeEvent } from './events.js';
import type { OutputRecord } from './output-record.js';
import type { TaskStatus } from './status.js';
import type { CompiledTask, DriftPolicy, Labels, Selector } from './types.js';

export type { RunProgress } from './run-progress.js';
export type { FlukeEvent, OutputRecord, TaskStatus };

/** Counts over an agent's matched tasks by their last result. */
export interface DriftSummary {
  tasks: number;
  ok: number;
  drifted: number;
  failing: number;
  unknown: number;
}

/** An element of `GET /api/v1/agents`. */
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

/** `GET /api/v1/agents/{name}` → `agent`. */
export interface AgentDetail extends AgentView {
  tasks: { task: string; status: TaskStatus | null }[];
  events: FlukeEvent[];
}

/** An element of `GET /api/v1/tasks`. */
export interface TaskSummaryView {
  name: string;
  description: string | null;
  policy: DriftPolicy;
  selector: Selector;
  steps: { type: string; name: string }[];
  matched_agents: number;
  status_counts: Record<string, number>;
}

/** `GET /api/v1/tasks/{name}` → `task`. */
export interface TaskDetail extends CompiledTask {
  policy: DriftPolicy;
  matched_agents: number;
  status_counts: Record<string, number>;
  agents: { name: string; connected: boolean; status: TaskStatus | null }[];
}

/** An element of `GET /api/v1/drift`. */
export type DriftEntry = TaskStatus & { agent: string };

/** `POST /api/v1/reconcile`. */
export interface ReconcileAccepted {
  id: string;
  status_url: string;
}

/** One execution as the API knows it (console/execution-lookup.ts pieces it together). */
export interface ExecutionView {
  id: string;
  agent: string;
  task: string;
  done: boolean;
  outcome: string | null;
  event: FlukeEvent | null;
}

/** `GET /api/v1/executions/{id}`. */
export interface ExecutionResponse {
  execution: ExecutionView;
  output: OutputRecord[];
}
