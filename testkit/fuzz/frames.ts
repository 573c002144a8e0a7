/**
 * Valid agent → gateway frames for every message type of `AgentMessage`, from two sources: a
 * sample built from the zod schema's current shape (schema-sample.ts) and a hand-written template
 * typed against the protocol. Each candidate is checked with the real schema; the first that
 * passes is used, so a field added to shared/protocol.ts is picked up, and a template the schema
 * no longer takes is reported instead of silently fuzzing garbage.
 */
import { AgentMessage, PROTOCOL_VERSION } from '../../shared/protocol.js';
import type { Rng } from './prng.js';
import { sampleOf, unionTypes } from './schema-sample.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const step = (r: Rng): JsonObject => ({
  step: `step-${r.int(100)}`,
  type: r.pick(['shell', 'systemd', 'mise']),
  outcome: r.pick(['satisfied', 'applied', 'failed']),
  exit_code: r.chance(0.5) ? 0 : null,
  apply_exit_code: null,
  duration_ms: r.int(10_000),
  output_tail: 'ok\n',
  error: null,
});

const base = (r: Rng): JsonObject => {
  const n = r.int(1_000_000);
  return {
    result_id: `r-${n}`,
    instruction_id: `i-${n}`,
    execution_id: `e-${n}`,
    task: `task-${r.int(50)}`,
  };
};

/** Hand-written templates, one per message type the protocol had when the fuzzer was written. */
const TEMPLATES: Record<string, (r: Rng, agent: string) => JsonObject> = {
  register: (r, agent) => ({
    type: 'register',
    v: PROTOCOL_VERSION,
    name: agent,
    labels: { role: r.pick(['web', 'db']), zone: 'a' },
    agent_version: '0.1.0',
    executors: ['shell', 'systemd', 'mise'],
    running: [],
    features: ['result_retry'],
  }),
  heartbeat: (r) => ({ type: 'heartbeat', running: r.chance(0.5) ? [] : [`i-${r.int(1000)}`] }),
  instruction_receipt: (r) => ({
    type: 'instruction_receipt',
    instruction_id: `i-${r.int(1_000_000)}`,
    accepted: true,
    reason: null,
  }),
  check_result: (r) => ({
    type: 'check_result',
    ...base(r),
    step: `step-${r.int(10)}`,
    satisfied: r.chance(0.5),
    exit_code: 1,
    duration_ms: r.int(5000),
    output_tail: 'drift\n',
  }),
  step_result: (r) => ({ type: 'step_result', ...base(r), result: step(r) }),
  task_result: (r) => ({
    type: 'task_result',
    ...base(r),
    mode: r.pick(['check', 'apply']),
    outcome: 'satisfied',
    started_at: '2026-01-01T00:00:00Z',
    finished_at: '2026-01-01T00:00:01Z',
    duration_ms: 1000,
    steps: [step(r)],
  }),
  output: (r) => ({
    type: 'output',
    execution_id: `e-${r.int(1_000_000)}`,
    task: `task-${r.int(50)}`,
    step: 'step-0',
    phase: r.pick(['check', 'apply', 'recheck', 'prepare']),
    stream: r.pick(['stdout', 'stderr']),
    line: `line ${r.int(1000)}`,
  }),
  results: (r, agent) => ({
    type: 'results',
    messages: Array.from({ length: 1 + r.int(4) }, () =>
      validFrame(r, r.pick(['instruction_receipt', 'check_result', 'step_result', 'task_result']), agent),
    ),
  }),
};

const unionMembers = unionTypes(AgentMessage);

/** Every agent message type the protocol has now (from the union, not from a hard-coded list). */
export const AGENT_MESSAGE_TYPES: readonly string[] = [...unionMembers.keys()];

/** Types whose template and schema sample both fail the schema (the corpus needs updating). */
export const brokenTypes = new Set<string>();

/** Fields whose sampled value is replaced, so frames stay under the fuzzer's control. */
function pin(frame: JsonObject, type: string, agent: string): JsonObject {
  if (type === 'register') {
    frame.v = PROTOCOL_VERSION;
    frame.name = agent;
  }
  return frame;
}

/** A frame of `type` that the current schema accepts (`agent` names a register). */
export function validFrame(r: Rng, type: string, agent: string): JsonObject {
  const schema = unionMembers.get(type);
  const template = TEMPLATES[type];
  const candidates: Array<() => JsonObject> = [];
  // Prefer the template (realistic values); the schema sample covers fields added since.
  if (template) candidates.push(() => template(r, agent));
  if (schema) candidates.push(() => pin(sampleOf(schema, r) as JsonObject, type, agent));
  for (const make of candidates) {
    const frame = make();
    if (AgentMessage.safeParse(frame).success) return frame;
    if (template && schema) {
      // The template may lack a field added since: fill it from a sample and try again.
      const sample = sampleOf(schema, r) as JsonObject;
      const merged = pin({ ...sample, ...frame }, type, agent);
      if (AgentMessage.safeParse(merged).success) return merged;
    }
  }
  brokenTypes.add(type);
  return template ? template(r, agent) : { type };
}
