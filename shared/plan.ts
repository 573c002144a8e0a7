/**
 * What to run on one agent and how: pure decisions the reconcile handler applies. No I/O.
 */
import type { RunMessage } from './protocol.js';
import { matches } from './selector.js';
import type { CompiledTask, DesiredState, DriftPolicy, Labels, RunMode } from './types.js';

/** Why a reconcile happened. Mirrors reconciler/jobs.ts, which may not be imported from shared/. */
export const TRIGGERS = ['commit', 'connect', 'drift_check', 'manual'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** The tasks whose selector holds for a host with these labels, in desired-state order. */
export function tasksForAgent(labels: Labels, state: DesiredState): CompiledTask[] {
  return state.tasks.filter((task) => matches(labels, task.selector));
}

export function effectivePolicy(task: CompiledTask, serverDefault: DriftPolicy): DriftPolicy {
  return task.drift?.policy ?? serverDefault;
}

/**
 * `alert_only` never applies on its own; a manual reconcile is a human asking for the apply,
 * so it applies whatever the policy (docs/manifests.md: manual reconciles always apply).
 */
export function modeFor(policy: DriftPolicy, trigger: Trigger): RunMode {
  if (trigger === 'manual') return 'apply';
  return policy === 'alert_only' ? 'check' : 'apply';
}

/** One task of an instruction, with what the result handler needs to judge its result. */
export interface PlannedTask {
  task: string;
  execution_id: string;
  mode: RunMode;
  policy: DriftPolicy;
}

export interface PlannedInstruction {
  agent: string;
  message: RunMessage;
  tasks: PlannedTask[];
}

export interface BuildInstructionInput {
  agent: string;
  /** Already matched to the agent (see tasksForAgent). */
  tasks: readonly CompiledTask[];
  revision: string;
  trigger: Trigger;
  serverDefault: DriftPolicy;
  ids: {
    /** Deterministic per reconcile job, so a retried job re-sends an id the agent refuses to rerun. */
    instruction: string;
    /** Defaults to `${instruction}.${index}`, stable across retries for the same reason. */
    execution?: (task: CompiledTask, index: number) => string;
  };
}

/** The `run` message for one agent plus the per-task plan (mode, policy) to keep beside it. */
export function buildInstruction(input: BuildInstructionInput): PlannedInstruction {
  const executionId =
    input.ids.execution ?? ((_task: CompiledTask, i: number) => `${input.ids.instruction}.${i}`);
  const planned = input.tasks.map((task, i) => {
    const policy = effectivePolicy(task, input.serverDefault);
    return {
      source: task,
      plan: {
        task: task.name,
        execution_id: executionId(task, i),
        mode: modeFor(policy, input.trigger),
        policy,
      },
    };
  });
  return {
    agent: input.agent,
    message: {
      type: 'run',
      instruction_id: input.ids.instruction,
      revision: input.revision,
      trigger: input.trigger,
      tasks: planned.map(({ source, plan }) => ({
        execution_id: plan.execution_id,
        task: plan.task,
        mode: plan.mode,
        steps: source.steps,
      })),
    },
    tasks: planned.map(({ plan }) => plan),
  };
}

/**
 * 32-bit FNV-1a over the UTF-8 bytes, then a murmur3 finaliser. FNV-1a's multiply carries a
 * change only towards higher bits; the finaliser spreads it both ways, so intervals that are
 * powers of two (only low bits kept) spread as well as round ones.
 */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Where in every poll interval this agent's drift check falls, in [0, interval). */
export function driftCheckOffset(agentName: string, pollIntervalMs: number): number {
  const interval = Math.max(1, Math.floor(pollIntervalMs));
  return stableHash(agentName) % interval;
}

/**
 * Milliseconds from `now` until this agent's next drift-check slot, in [0, interval): 0 means the
 * slot is exactly now. Slots sit at the same phase of every interval (measured from the epoch),
 * so every replica computes the same schedule and agents spread evenly instead of all at once.
 */
export function driftCheckDelay(agentName: string, pollIntervalMs: number, now: number): number {
  const interval = Math.max(1, Math.floor(pollIntervalMs));
  const phase = ((Math.floor(now) % interval) + interval) % interval;
  return (driftCheckOffset(agentName, interval) - phase + interval) % interval;
}
