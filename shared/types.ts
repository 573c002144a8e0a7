/**
 * Fluke's domain model. Pure data: no I/O, no clients.
 *
 * Glossary
 * - agent:        a host process that connected out to a gateway and declared a name and labels.
 * - task:         a named unit of desired state in a manifest: a selector, a drift policy and steps.
 * - step:         one executor block inside a task (`shell`, `systemd`, `mise`), run in declaration order.
 * - check:        the read-only half of a step; exit 0 means the step is satisfied.
 * - apply:        the changing half of a step; runs only when the check failed and the mode allows it.
 * - desired state: every task compiled from the manifest files of one Git revision.
 * - drift:        a step whose check failed on an agent.
 * - instruction:  one message telling one agent to run some tasks; it has an id the agent never runs twice.
 * - execution:    one task run inside one instruction on one agent; live output and events refer to it.
 * - mode:         per task in an instruction: `check` (report only) or `apply` (check, apply, re-check).
 */

export const DRIFT_POLICIES = ['remediate', 'remediate_and_alert', 'alert_only'] as const;
export type DriftPolicy = (typeof DRIFT_POLICIES)[number];

export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type SelectorOperator = (typeof SELECTOR_OPERATORS)[number];

export type Labels = Record<string, string>;

export interface MatchExpression {
  key: string;
  operator: SelectorOperator;
  /** Present (possibly empty) for In/NotIn; null for Exists/DoesNotExist. */
  values: string[] | null;
}

export interface Selector {
  match_labels: Labels;
  match_expressions: MatchExpression[];
}

export const ON_FAILURE = ['abort', 'continue'] as const;
export type OnFailure = (typeof ON_FAILURE)[number];

export interface ShellStep {
  type: 'shell';
  name: string;
  check: string;
  command: string;
  /** null: the agent's home directory. */
  working_dir: string | null;
  run_as: string | null;
  env: Record<string, string>;
  on_failure: OnFailure;
  /** Fields shown as "[redacted]" (shared/redact.ts); absent when the manifest lists none. */
  sensitive?: string[];
}

export const SYSTEMD_STATES = ['running', 'stopped'] as const;
export type SystemdState = (typeof SYSTEMD_STATES)[number];

export interface SystemdStep {
  type: 'systemd';
  name: string;
  unit: string;
  state: SystemdState;
  enabled: boolean;
  sensitive?: string[];
}

export interface MiseGit {
  url: string;
  branch: string;
}

export interface MiseStep {
  type: 'mise';
  name: string;
  working_dir: string;
  check_task: string;
  apply_task: string;
  git: MiseGit | null;
  sensitive?: string[];
}

export type Step = ShellStep | SystemdStep | MiseStep;
export type ExecutorType = Step['type'];
export const EXECUTOR_TYPES: readonly ExecutorType[] = ['shell', 'systemd', 'mise'];

/** A task exactly as `fluke validate --json` prints it. */
export interface CompiledTask {
  name: string;
  description: string | null;
  selector: Selector;
  /** As declared in the manifest; null means "the server default". */
  drift: { policy: DriftPolicy } | null;
  steps: Step[];
}

export interface DesiredState {
  tasks: CompiledTask[];
}

/** Where something was declared, for error messages and the UI. */
export interface SourceLocation {
  file: string;
  line: number;
  column?: number;
}

/** What a step's run came to. */
export const STEP_OUTCOMES = [
  'satisfied',
  'applied',
  'drifted',
  'unconverged',
  'failed',
  'skipped',
  'timeout',
] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

/**
 * What a task's run came to on one agent.
 * - satisfied:   every check passed; nothing ran.
 * - applied:     something drifted and every drifted step was applied and re-checked clean.
 * - drifted:     something drifted and the mode was `check` (nothing applied).
 * - unconverged: an apply exited 0 but the re-check still failed.
 * - failed:      a check or apply errored (non-zero apply, executor error).
 * - skipped:     not run (an earlier failure aborted, or the run was cancelled before it started).
 * - timeout:     a command exceeded `command_timeout`, or the agent did not answer in time.
 */
export const TASK_OUTCOMES = STEP_OUTCOMES;
export type TaskOutcome = StepOutcome;

export type RunMode = 'check' | 'apply';

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}
