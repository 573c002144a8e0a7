/**
 * The agent ⇄ gateway wire protocol: JSON text frames, one discriminated union per direction,
 * validated at the boundary. Documented in docs/protocol.md. Bump PROTOCOL_VERSION on any
 * incompatible change; the gateway refuses versions it does not speak.
 *
 * Over 300 lines because the whole wire format is reviewed as one contract: every message of both
 * directions, the two unions over them and the close codes sit together, so a change to one is
 * read against all the others (and against docs/protocol.md) in one place.
 */
import { z } from 'zod';
import {
  AGENT_NAME,
  AGENT_NAME_RULE,
  CONTROL_CHARACTERS,
  hasControlCharacters,
  isLabelKey,
  isLabelValue,
  LABEL_KEY_RULE,
  LABEL_VALUE_RULE,
} from './agent-rules.js';
import { STEP_OUTCOMES } from './types.js';

export const PROTOCOL_VERSION = 1;

/** WebSocket close codes Fluke uses (4000–4999 is the application range). */
export const CloseCode = {
  /** Normal close. */
  normal: 1000,
  /** Gateway is shutting down: reconnect, possibly elsewhere. */
  goingAway: 1001,
  /** Malformed JSON or a message that fails the schema. */
  badMessage: 4400,
  /** Registration refused (scope, version, name). */
  refused: 4403,
  /** A message of the wrong type for the connection's phase. */
  wrongPhase: 4409,
  /** Frame larger than the gateway accepts. */
  tooLarge: 1009,
  /** A newer session for the same agent name replaced this one. */
  replaced: 4001,
  /** The socket could not keep up (backpressure limit) or went silent. */
  slow: 4002,
} as const;

const name = z.string().min(1).max(253);
const id = z.string().min(1).max(128);
const labelKey = z.string().min(1).max(253);
const labelValue = z.string().max(253);
/** Labels as stored and passed around (lenient: what older versions stored still reads). */
export const LabelsSchema = z.record(labelKey, labelValue);
/**
 * Labels as an agent declares them in `register`: the label rule of shared/agent-rules.ts. How
 * many and how large is the gateway's configurable limit (`agent_limits`), checked after parsing.
 */
export const DeclaredLabelsSchema = z.record(
  z.string().refine(isLabelKey, { message: `label keys must be ${LABEL_KEY_RULE}` }),
  z.string().refine(isLabelValue, { message: `label values must be ${LABEL_VALUE_RULE}` }),
);
/** Free text an agent declares about itself (version, feature names): printable, bounded. */
const declared = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !hasControlCharacters(s), { message: 'must not contain control characters' });

const stringMap = z.record(z.string(), z.string());
/** Field names the manifest marks sensitive (shared/redact.ts); older agents drop the key. */
const sensitive = z.array(z.string().max(32)).max(16).optional();

export const StepSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('shell'),
    name,
    check: z.string(),
    command: z.string(),
    working_dir: z.string().nullable(),
    run_as: z.string().nullable(),
    env: stringMap,
    on_failure: z.enum(['abort', 'continue']),
    sensitive,
  }),
  z.object({
    type: z.literal('systemd'),
    name,
    unit: z.string().min(1),
    state: z.enum(['running', 'stopped']),
    enabled: z.boolean(),
    sensitive,
  }),
  z.object({
    type: z.literal('mise'),
    name,
    working_dir: z.string().min(1),
    check_task: z.string().min(1),
    apply_task: z.string().min(1),
    git: z.object({ url: z.string().min(1), branch: z.string().min(1) }).nullable(),
    sensitive,
  }),
]);

export const RunTaskSchema = z.object({
  /** Unique per (instruction, task); events and live output refer to it. */
  execution_id: id,
  task: name,
  mode: z.enum(['check', 'apply']),
  steps: z.array(StepSchema).max(1000),
});
export type RunTask = z.infer<typeof RunTaskSchema>;

export const StepOutcomeSchema = z.enum(STEP_OUTCOMES);

export const StepResultSchema = z.object({
  step: name,
  type: z.enum(['shell', 'systemd', 'mise']),
  outcome: StepOutcomeSchema,
  /** Exit code of the last command that ran for this step (check, apply or re-check); null if none ran. */
  exit_code: z.number().int().nullable(),
  /** Exit code of the apply, when one ran. */
  apply_exit_code: z.number().int().nullable(),
  duration_ms: z.number().nonnegative(),
  /** Last bytes of combined output, capped by the agent. */
  output_tail: z.string(),
  error: z.string().nullable(),
});
export type StepResult = z.infer<typeof StepResultSchema>;

const resultBase = {
  /** Unique per result message; the agent re-sends until a `result_ack` names it. */
  result_id: id,
  instruction_id: id,
  execution_id: id,
  task: name,
};

// ---- agent → gateway --------------------------------------------------------

export const RegisterMessage = z.object({
  type: z.literal('register'),
  v: z.number().int(),
  /** The agent-name rule (shared/agent-rules.ts), as the agent's config loader applies it. */
  name: z.string().regex(AGENT_NAME, { message: `agent names must be ${AGENT_NAME_RULE}` }),
  labels: DeclaredLabelsSchema,
  agent_version: declared(64),
  executors: z.array(z.enum(['shell', 'systemd', 'mise'])).max(16),
  /** Instruction ids the agent is running right now (after a reconnect). */
  running: z.array(id).max(1000).default([]),
  /**
   * Optional protocol features the agent understands (AGENT_FEATURES), so a gateway sends newer
   * messages only to agents that take them. Unknown names are allowed (a newer agent's).
   */
  features: z.array(declared(64)).max(32).default([]),
});
export type RegisterMessage = z.infer<typeof RegisterMessage>;

/**
 * Features this agent build advertises in `register`. `result_retry`: it takes the gateway's
 * `result_retry` (an agent without it closes a socket on a message type it does not know).
 * `identity`: it enrolls — keeps the `credential` of `registered` and presents it from then on.
 */
export const AGENT_FEATURES = ['result_retry', 'identity'] as const;

export const HeartbeatMessage = z.object({
  type: z.literal('heartbeat'),
  running: z.array(id).max(1000).default([]),
});
export type HeartbeatMessage = z.infer<typeof HeartbeatMessage>;

/**
 * Why an agent refused an instruction, for machines (`reason` is the same for humans):
 * `duplicate` the instruction id ran before; `busy` one of its tasks is executing now;
 * `shutting_down` the agent takes no more work; `invalid` a task or execution id appears twice.
 */
export const REFUSAL_CODES = ['duplicate', 'busy', 'shutting_down', 'invalid'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** The agent accepted or refused an instruction (refusal: duplicate id, busy task, bad steps). */
export const InstructionReceiptMessage = z.object({
  type: z.literal('instruction_receipt'),
  instruction_id: id,
  accepted: z.boolean(),
  reason: z.string().max(1000).nullable(),
  /**
   * Refusals only. Absent from older agents; a code this build does not know reads as absent
   * rather than failing the frame (agents may be upgraded before the servers).
   */
  code: z.enum(REFUSAL_CODES).optional().catch(undefined),
});
export type InstructionReceiptMessage = z.infer<typeof InstructionReceiptMessage>;

/** A step's first check finished: sent at once so drift can be alerted before a long apply ends. */
export const CheckResultMessage = z.object({
  type: z.literal('check_result'),
  ...resultBase,
  step: name,
  satisfied: z.boolean(),
  exit_code: z.number().int().nullable(),
  duration_ms: z.number().nonnegative(),
  output_tail: z.string(),
});
export type CheckResultMessage = z.infer<typeof CheckResultMessage>;

export const StepResultMessage = z.object({
  type: z.literal('step_result'),
  ...resultBase,
  result: StepResultSchema,
});
export type StepResultMessage = z.infer<typeof StepResultMessage>;

export const TaskResultMessage = z.object({
  type: z.literal('task_result'),
  ...resultBase,
  mode: z.enum(['check', 'apply']),
  outcome: StepOutcomeSchema,
  started_at: z.string(),
  finished_at: z.string(),
  duration_ms: z.number().nonnegative(),
  steps: z.array(StepResultSchema),
});
export type TaskResultMessage = z.infer<typeof TaskResultMessage>;

/** One line of live output; best effort, not acknowledged, not re-sent. */
export const OutputMessage = z.object({
  type: z.literal('output'),
  execution_id: id,
  task: name,
  step: name,
  phase: z.enum(['check', 'apply', 'recheck', 'prepare']),
  stream: z.enum(['stdout', 'stderr']),
  line: z.string().max(16_384),
});
export type OutputMessage = z.infer<typeof OutputMessage>;

/** Most items one `results` frame may carry (the 1 MiB frame limit applies as well). */
export const MAX_RESULTS_PER_FRAME = 1000;

/** What may travel inside a `results` frame: receipts and results, never live output. */
export const ResultsItem = z.discriminatedUnion('type', [
  InstructionReceiptMessage,
  CheckResultMessage,
  StepResultMessage,
  TaskResultMessage,
]);
export type ResultsItem = z.infer<typeof ResultsItem>;

/**
 * Several receipts and results in one frame, in the order the agent produced them. Each item is
 * handled exactly as the same message sent on its own (results are acked by `result_id`).
 */
export const ResultsMessage = z.object({
  type: z.literal('results'),
  messages: z.array(ResultsItem).min(1).max(MAX_RESULTS_PER_FRAME),
});
export type ResultsMessage = z.infer<typeof ResultsMessage>;

export const AgentMessage = z.discriminatedUnion('type', [
  RegisterMessage,
  HeartbeatMessage,
  InstructionReceiptMessage,
  CheckResultMessage,
  StepResultMessage,
  TaskResultMessage,
  OutputMessage,
  ResultsMessage,
]);
export type AgentMessage = z.infer<typeof AgentMessage>;
/** The messages that carry a `result_id` and wait for an ack. */
export type AgentResult = CheckResultMessage | StepResultMessage | TaskResultMessage;

// ---- gateway → agent --------------------------------------------------------

export const RegisteredMessage = z.object({
  type: z.literal('registered'),
  v: z.number().int(),
  session_id: id,
  gateway_id: id,
  heartbeat_interval_ms: z.number().int().positive(),
  /** Enrollment: the agent's own credential, sent once to an agent that advertised `identity`. */
  credential: z.string().max(1024).optional(),
});
export type RegisteredMessage = z.infer<typeof RegisteredMessage>;

/**
 * Why the gateway refused a `register`: `version` protocol version; `scope` the grant does not
 * allow the name or labels; `name_held` another identity holds the name (the holder keeps its
 * session); `name_mismatch` a credential registering another name than its own;
 * `legacy_refused` a bootstrap token from an agent that does not enroll, where
 * `identity.legacy_agents = false`.
 */
export const REGISTER_REFUSAL_CODES = [
  'version',
  'scope',
  'name_held',
  'name_mismatch',
  'legacy_refused',
  'limits',
] as const;
export type RegisterRefusalCode = (typeof REGISTER_REFUSAL_CODES)[number];

/** Sent just before the gateway closes the socket with CloseCode.refused. */
export const RefusedMessage = z.object({
  type: z.literal('refused'),
  reason: z.string(),
  /**
   * For machines (REGISTER_REFUSAL_CODES); `reason` is for humans. Unknown codes are allowed (a
   * newer gateway's).
   */
  code: z.string().max(64).optional(),
});
export type RefusedMessage = z.infer<typeof RefusedMessage>;

export const RunMessage = z.object({
  type: z.literal('run'),
  instruction_id: id,
  /** Git revision the steps were compiled from. */
  revision: z.string().max(64),
  /** Why: `commit`, `connect`, `drift_check`, `manual`. Informational. */
  trigger: z.string().max(32),
  tasks: z.array(RunTaskSchema).max(1000),
});
export type RunMessage = z.infer<typeof RunMessage>;

export const ResultAckMessage = z.object({
  type: z.literal('result_ack'),
  result_ids: z.array(id).max(10_000),
});
export type ResultAckMessage = z.infer<typeof ResultAckMessage>;

/**
 * The gateway could not take these results now (its backlog is full): send them again after
 * `retry_after_ms`. Not an error and not an ack: the agent keeps them until a `result_ack`.
 */
export const ResultRetryMessage = z.object({
  type: z.literal('result_retry'),
  result_ids: z.array(id).max(10_000),
  /** Short while Redis is healthy (a burst filled the backlog), long while enqueues fail. */
  retry_after_ms: z.number().int().nonnegative(),
});
export type ResultRetryMessage = z.infer<typeof ResultRetryMessage>;

/** Stop an instruction (all its tasks) or one execution; running commands are killed. */
export const CancelMessage = z.object({
  type: z.literal('cancel'),
  instruction_id: id,
  execution_id: id.nullable(),
  reason: z.string().max(1000),
});
export type CancelMessage = z.infer<typeof CancelMessage>;

export const GatewayMessage = z.discriminatedUnion('type', [
  RegisteredMessage,
  RefusedMessage,
  RunMessage,
  ResultAckMessage,
  ResultRetryMessage,
  CancelMessage,
]);
export type GatewayMessage = z.infer<typeof GatewayMessage>;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

function parseWith<T>(schema: z.ZodType<T>, text: string): ParseResult<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: 'malformed JSON' };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // The path may hold a key the peer chose (a label key): bounded, control characters masked.
    const path = issue ? issue.path.join('.') : '';
    const shown = (path.length > 80 ? `${path.slice(0, 80)}…` : path).replace(CONTROL_CHARACTERS, '?');
    const where = shown ? ` at ${shown}` : '';
    return { ok: false, error: `invalid message${where}: ${issue?.message ?? 'schema mismatch'}` };
  }
  return { ok: true, message: parsed.data };
}

export function parseAgentMessage(text: string): ParseResult<AgentMessage> {
  return parseWith(AgentMessage, text);
}

export function parseGatewayMessage(text: string): ParseResult<GatewayMessage> {
  return parseWith(GatewayMessage, text);
}

export function encode(message: AgentMessage | GatewayMessage): string {
  return JSON.stringify(message);
}
