/**
 * Judging one result: the new (agent, task) status, the drift episode change, and the alerts.
 * Pure; shared/result-rules.ts asks it, the result handlers apply the verdict (docs/events.md,
 * "Applying a verdict").
 *
 * Rules (docs/manifests.md "drift", docs/events.md):
 * - An episode opens with the first run that finds the task drifted or failing and closes with
 *   the first run that comes back satisfied or applied. Its id is the opening execution's id.
 * - `remediate` never alerts. `remediate_and_alert` and `alert_only` alert once per episode each:
 *   `drift_detected` when drift is first seen, `remediation_failed` when an apply of known drift
 *   fails, and `drift_remediated` when an episode that alerted closes.
 * - Errors without drift (a check that cannot run) open an episode and show in GET /drift, but
 *   do not alert: no drift was detected and no remediation attempted.
 */
import { type Alert, type AlertEvent, buildAlert, type RemediationStatus } from './alerts.js';
import type { DriftEpisode, NewDriftEpisode, TaskStatus } from './status.js';
import type { DriftPolicy, Labels, RunMode, StepOutcome, TaskOutcome } from './types.js';

/** A step's first check, sent before any apply (CheckResultMessage fits). */
export interface CheckObservation {
  type: 'check_result';
  execution_id: string;
  step: string;
  satisfied: boolean;
}

/** The final result of a task run (TaskResultMessage fits). */
export interface ResultObservation {
  type: 'task_result';
  execution_id: string;
  outcome: TaskOutcome;
  steps: readonly { step: string; outcome: StepOutcome; apply_exit_code: number | null }[];
  /** ISO time on the agent's clock the execution finished: orders one agent's executions of a task. */
  finished_at?: string;
}

/** The instruction's deadline passed with no task_result for this execution. */
export interface TimeoutObservation {
  type: 'timeout';
  execution_id: string;
  /**
   * ISO time: a status from an instruction issued after it supersedes the timeout. Default the
   * instruction's creation (JudgeInput.issued); earlier when the instruction went to a session
   * the agent has since replaced (shared/result-rules.ts timeoutSince).
   */
  since?: string;
}

export type Observation = CheckObservation | ResultObservation | TimeoutObservation;

export interface JudgeInput {
  agent: { name: string; labels: Labels };
  task: string;
  /** The effective policy and mode the instruction was planned with. */
  policy: DriftPolicy;
  mode: RunMode;
  revision: string;
  /**
   * ISO time the instruction was created, recorded in the status as `issued_at`; undefined when
   * unknown (a timeout is then never taken as superseded by another execution).
   */
  issued?: string;
  /** ISO time of judging: the status's `at`, the episode's `opened_at`, the alerts' timestamp. */
  now: string;
  previous: TaskStatus | null;
  episode: DriftEpisode | null;
  observation: Observation;
}

export type IgnoredBecause =
  /** This execution's final result was already judged (a redelivered job). */
  | 'duplicate'
  /**
   * A check_result or timeout that arrived after its execution's final result, or a timeout of an
   * instruction created before the one whose result the status holds.
   */
  | 'superseded'
  /** A passing check, or a check in check mode: the task_result will say everything. */
  | 'not_decisive'
  /** A cancelled run says nothing about the host. */
  | 'skipped';

export interface Verdict {
  ignored: IgnoredBecause | null;
  /** Write last: once written, a redelivered result is recognised as a duplicate. */
  status: TaskStatus | null;
  /** Open before claiming the alerts. */
  openEpisode: NewDriftEpisode | null;
  /** In send order. */
  alerts: Alert[];
  /** The episode id to close, after the alerts are enqueued. */
  closeEpisode: string | null;
}

const NOTHING: Omit<Verdict, 'ignored'> = { status: null, openEpisode: null, alerts: [], closeEpisode: null };

function ignore(because: IgnoredBecause): Verdict {
  return { ignored: because, ...NOTHING, alerts: [] };
}

const DRIFTED: ReadonlySet<StepOutcome> = new Set(['applied', 'drifted', 'unconverged']);
const FAILED: ReadonlySet<StepOutcome> = new Set(['failed', 'unconverged', 'timeout']);

/** Steps whose check found drift, whatever came after. */
export function driftedSteps(steps: ResultObservation['steps']): string[] {
  const out: string[] = [];
  for (const s of steps) {
    if (DRIFTED.has(s.outcome) || (s.outcome === 'failed' && s.apply_exit_code !== null)) out.push(s.step);
  }
  return out;
}

export function failedSteps(steps: ResultObservation['steps']): string[] {
  const out: string[] = [];
  for (const s of steps) if (FAILED.has(s.outcome)) out.push(s.step);
  return out;
}

/**
 * The verdict on one observation. `drifted`: driftedSteps of a task_result's steps, when the
 * caller computed them already (shared/result-rules.ts does, for the quiet-check rule).
 */
export function judge(input: JudgeInput, drifted?: string[]): Verdict {
  const { observation: obs, previous } = input;
  const judgedAlready = previous !== null && previous.execution_id === obs.execution_id;
  switch (obs.type) {
    case 'check_result':
      if (judgedAlready) return ignore('superseded');
      if (obs.satisfied || input.mode === 'check' || input.policy === 'remediate')
        return ignore('not_decisive');
      return decide(input, { outcome: null, drifted: [obs.step], failed: [] });
    case 'timeout':
      if (judgedAlready || issuedLater(previous, obs.since ?? input.issued)) return ignore('superseded');
      return decide(input, { outcome: 'timeout', drifted: [], failed: [] });
    case 'task_result':
      // A synthetic timeout status for this execution does not make the real result a duplicate.
      if (judgedAlready && previous.outcome !== 'timeout') return ignore('duplicate');
      if (obs.outcome === 'skipped') return ignore('skipped');
      // An execution that finished before the one the status holds (two checks overlapped after a
      // reconnect or a FLUSHALL, and its result was judged last): the newer observation stands.
      if (!judgedAlready && finishedLater(previous, obs.finished_at)) return ignore('superseded');
      return decide(input, {
        outcome: obs.outcome,
        drifted: drifted ?? driftedSteps(obs.steps),
        failed: failedSteps(obs.steps),
      });
  }
}

/**
 * The status comes from an instruction created after `since`: the host was heard from since, and
 * a timeout of the older instruction (its gateway died, say) has nothing newer to say. The
 * judging time would not do: an older execution's result may be judged after a newer instruction
 * was created, and that instruction may really hang.
 */
function issuedLater(previous: TaskStatus | null, since: string | undefined): boolean {
  if (previous?.issued_at === undefined || since === undefined) return false;
  return Date.parse(previous.issued_at) > Date.parse(since);
}

/**
 * The status comes from an execution the agent finished after `finished`. Both times are the same
 * agent's clock, and an agent runs one execution of a task at a time (a second is refused as busy),
 * so this is the order the host saw them in.
 */
function finishedLater(previous: TaskStatus | null, finished: string | undefined): boolean {
  if (previous?.finished_at === undefined || finished === undefined) return false;
  return Date.parse(previous.finished_at) > Date.parse(finished);
}

/** Agent clocks drift, but an agent must not pin its status by claiming a far-future finish. */
const MAX_FINISHED_AHEAD_MS = 5 * 60_000;

function plausible(finished: string | undefined, now: string): finished is string {
  const at = finished === undefined ? Number.NaN : Date.parse(finished);
  return Number.isFinite(at) && at <= Date.parse(now) + MAX_FINISHED_AHEAD_MS;
}

interface Finding {
  /** Null for an early check result: the run is still going and the status stays as it was. */
  outcome: TaskOutcome | null;
  drifted: string[];
  failed: string[];
}

function decide(input: JudgeInput, finding: Finding): Verdict {
  const { outcome, drifted } = finding;
  const clean = outcome === 'satisfied' || outcome === 'applied';
  const opening = input.episode === null && outcome !== 'satisfied';
  const openEpisode: NewDriftEpisode | null = opening
    ? {
        id: input.observation.execution_id,
        task: input.task,
        opened_at: input.now,
        revision: input.revision,
        policy: input.policy,
        drifted_steps: drifted,
      }
    : null;
  const episode = input.episode ?? (openEpisode ? { ...openEpisode, alerts: [] } : null);

  const alerts: Alert[] = [];
  if (episode && input.policy !== 'remediate') {
    const sent = new Set<AlertEvent>(episode.alerts);
    const knownDrift = drifted.length > 0 ? drifted : episode.drifted_steps;
    const send = (event: AlertEvent, status: RemediationStatus, steps: readonly string[]) => {
      if (sent.has(event)) return;
      sent.add(event);
      alerts.push(
        buildAlert({
          event,
          at: input.now,
          agent: input.agent,
          task: input.task,
          policy: input.policy,
          remediation_status: status,
          revision: input.revision,
          drifted_steps: steps,
          episode_id: episode.id,
        }),
      );
    };
    if (drifted.length > 0)
      send('drift_detected', input.mode === 'check' ? 'pending_manual' : 'in_progress', drifted);
    const applyFailed = outcome === 'failed' || outcome === 'unconverged' || outcome === 'timeout';
    if (input.mode === 'apply' && applyFailed && knownDrift.length > 0)
      send('remediation_failed', 'failed', knownDrift);
    // Only an episode that alerted gets its all-clear; a silent one closes silently.
    if (clean && sent.size > 0)
      send('drift_remediated', outcome === 'applied' ? 'remediated' : 'resolved', knownDrift);
  }

  const status: TaskStatus | null =
    outcome === null
      ? null
      : {
          task: input.task,
          outcome,
          mode: input.mode,
          revision: input.revision,
          execution_id: input.observation.execution_id,
          at: input.now,
          drifted_steps: drifted,
          failed_steps: finding.failed,
          policy: input.policy,
          ...(input.issued === undefined ? {} : { issued_at: input.issued }),
          ...(input.observation.type === 'task_result' && plausible(input.observation.finished_at, input.now)
            ? { finished_at: input.observation.finished_at }
            : {}),
        };
  return { ignored: null, status, openEpisode, alerts, closeEpisode: clean && episode ? episode.id : null };
}
