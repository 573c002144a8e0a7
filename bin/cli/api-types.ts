/**
 * The shapes the CLI reads from `/api/v1` (docs/api.md). Type-only imports of the server's own
 * read models, so the client and the routes cannot drift apart; nothing of the server is loaded
 * at run time. Shapes the routes assemble inline are stated here.
 */

import type { ExecutionView as Execution } from '../../console/execution-lookup.js';
import type { AgentView, DriftSummary } from '../../console/views.js';
import type { FlukeEvent } from '../../shared/events.js';
import type { TaskStatus } from '../../shared/status.js';
import type { CompiledTask, DriftPolicy, Selector } from '../../shared/types.js';
import type { OutputRecord } from '../../store/output/output.js';
import type { RunProgress } from '../../store/runs/run-store.js';

export type { AgentView, DriftSummary, FlukeEvent, OutputRecord, RunProgress, TaskStatus };

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

/** `GET /api/v1/executions/{id}`. */
export interface ExecutionView {
  execution: Execution;
  output: OutputRecord[];
}
