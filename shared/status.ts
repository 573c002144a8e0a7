/**
 * The last known status of one (agent, task) and its drift episode: the small, TTL-bound state
 * the judge reads and writes. Pure data; the stores live in reconciler/status-store/.
 *
 * A drift episode starts with the first run that finds a task drifted or failing and ends with
 * the first run that comes back satisfied or applied. Alerts are sent at most once per episode
 * and event, however many cycles the drift persists.
 */
import { z } from 'zod';
import { ALERT_EVENTS, type AlertEvent } from './alerts.js';
import { DRIFT_POLICIES, type DriftPolicy, type RunMode, STEP_OUTCOMES, type TaskOutcome } from './types.js';

export interface TaskStatus {
  task: string;
  outcome: TaskOutcome;
  mode: RunMode;
  revision: string;
  execution_id: string;
  /** ISO time the reconciler judged the result (not the agent's clock). */
  at: string;
  drifted_steps: string[];
  failed_steps: string[];
  policy: DriftPolicy;
  /**
   * ISO time (reconciler clock) the instruction this execution came from was created. Orders
   * executions for the deadline: a timeout of an instruction created earlier does not overwrite
   * this status. Absent in statuses written before it was recorded.
   */
  issued_at?: string;
  /**
   * ISO time on the agent's clock this execution finished (task results only). Orders one agent's
   * executions of the task: a result of an execution that finished earlier does not overwrite it.
   */
  finished_at?: string;
}

export const TaskStatusSchema: z.ZodType<TaskStatus> = z.object({
  task: z.string().min(1),
  outcome: z.enum(STEP_OUTCOMES),
  mode: z.enum(['check', 'apply']),
  revision: z.string(),
  execution_id: z.string().min(1),
  at: z.string(),
  drifted_steps: z.array(z.string()),
  failed_steps: z.array(z.string()),
  policy: z.enum(DRIFT_POLICIES),
  issued_at: z.string().optional(),
  finished_at: z.string().optional(),
});

/** What opening an episode records; immutable for the episode's life. */
export interface NewDriftEpisode {
  /** The execution id of the run that opened it: deterministic, so a retried judgement reuses it. */
  id: string;
  task: string;
  opened_at: string;
  revision: string;
  policy: DriftPolicy;
  drifted_steps: string[];
}

export const NewDriftEpisodeSchema: z.ZodType<NewDriftEpisode> = z.object({
  id: z.string().min(1),
  task: z.string().min(1),
  opened_at: z.string(),
  revision: z.string(),
  policy: z.enum(DRIFT_POLICIES),
  drifted_steps: z.array(z.string()),
});

/** An open episode as read back: plus the alerts already claimed for it, in ALERT_EVENTS order. */
export interface DriftEpisode extends NewDriftEpisode {
  alerts: AlertEvent[];
}

/** Outcomes that put an (agent, task) on the drift list (`GET /api/v1/drift`, `fluke get drift`). */
export function isProblem(outcome: TaskOutcome): boolean {
  return outcome === 'drifted' || outcome === 'unconverged' || outcome === 'failed' || outcome === 'timeout';
}

export interface ProblemEntry {
  agent: string;
  status: TaskStatus;
}

/** Sort alerts the way stores return them, so memory and Redis twins agree. */
export function sortAlerts(alerts: Iterable<AlertEvent>): AlertEvent[] {
  const have = new Set(alerts);
  return ALERT_EVENTS.filter((e) => have.has(e));
}
