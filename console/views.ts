/**
 * Read models of the HTTP API, built from the registry, the desired state and the status store.
 * Pure functions over data the routes fetched; the shapes are in shared/api-types.ts.
 */
import type { AgentView, DriftSummary, TaskSummaryView } from '../shared/api-types.js';
import { effectivePolicy, tasksForAgent } from '../shared/plan.js';
import type { RegistryEntry } from '../shared/registry-entry.js';
import { matches } from '../shared/selector.js';
import { isProblem, type TaskStatus } from '../shared/status.js';
import type { CompiledTask, DesiredState, DriftPolicy, Labels } from '../shared/types.js';

/** What outlives an agent's registry entry: the known-agents index and the labels it last declared. */
export interface KnownAgent {
  last_seen: number | null;
  labels: Labels | null;
}

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

export function summarizeDrift(taskNames: string[], statuses: TaskStatus[]): DriftSummary {
  const byTask = new Map(statuses.map((s) => [s.task, s]));
  const summary: DriftSummary = { tasks: taskNames.length, ok: 0, drifted: 0, failing: 0, unknown: 0 };
  for (const name of taskNames) {
    const s = byTask.get(name);
    if (!s) summary.unknown++;
    else if (s.outcome === 'drifted') summary.drifted++;
    else if (isProblem(s.outcome)) summary.failing++;
    else summary.ok++;
  }
  return summary;
}

export function agentView(
  name: string,
  entry: RegistryEntry | null,
  known: KnownAgent,
  state: DesiredState | null,
  statuses: TaskStatus[],
): AgentView {
  // A disconnected agent shows the labels it last declared, so operators can still find it by them.
  const labels = entry?.labels ?? known.labels ?? {};
  const tasks =
    entry && state ? tasksForAgent(labels, state).map((t) => t.name) : statuses.map((s) => s.task);
  return {
    name,
    labels,
    connected: entry !== null,
    gateway_id: entry?.gateway_id ?? null,
    session_id: entry?.session_id ?? null,
    connected_at: iso(entry?.connected_at),
    last_seen: iso(entry?.last_seen ?? known.last_seen),
    agent_version: entry?.agent_version ?? null,
    executors: entry?.executors ?? [],
    drift: summarizeDrift(tasks, statuses),
  };
}

export function taskSummary(
  task: CompiledTask,
  defaultPolicy: DriftPolicy,
  agents: RegistryEntry[],
  statusOf: (agent: string, task: string) => TaskStatus | undefined,
): TaskSummaryView {
  const matched = agents.filter((a) => matches(a.labels, task.selector));
  const counts: Record<string, number> = {};
  for (const a of matched) {
    const outcome = statusOf(a.name, task.name)?.outcome ?? 'unknown';
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  return {
    name: task.name,
    description: task.description,
    policy: effectivePolicy(task, defaultPolicy),
    selector: task.selector,
    steps: task.steps.map((s) => ({ type: s.type, name: s.name })),
    matched_agents: matched.length,
    status_counts: counts,
  };
}

/** `label=k=v` filters (repeatable): every one must hold. */
export function parseLabelFilters(values: string[]): Labels | string {
  const out: Labels = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) return `label filter "${v}" must look like key=value`;
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export function hasLabels(labels: Labels, wanted: Labels): boolean {
  return Object.entries(wanted).every(([k, v]) => labels[k] === v);
}
