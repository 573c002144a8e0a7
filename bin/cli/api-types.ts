/**
 * The shapes the CLI reads from `/api/v1` (docs/api.md): the server's own declarations in
 * shared/api-types.ts, type-only, so nothing of the server is loaded at run time.
 */

import type { ExecutionResponse } from '../../shared/api-types.js';

export type {
  AgentDetail,
  AgentView,
  DriftEntry,
  DriftSummary,
  FlukeEvent,
  OutputRecord,
  ReconcileAccepted,
  RunProgress,
  TaskDetail,
  TaskStatus,
  TaskSummaryView,
} from '../../shared/api-types.js';

/** `GET /api/v1/executions/{id}` (the CLI's name for it; the server's ExecutionView is its `execution`). */
export type ExecutionView = ExecutionResponse;
