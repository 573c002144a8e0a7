/**
 * What travels to a gateway through its inbox stream (`keys.gatewayInbox(gatewayId)`): instructions for an
 * agent it holds, and kicks telling it that a newer session of one of its agents registered elsewhere.
 * Pure schema; publishers use `publishInstruction` / `encodeInboxRecord`.
 *
 * An instruction is framed as two JSON texts joined by a newline (JSON.stringify never emits a raw
 * one): the envelope (`kind`, `agent`, `session_id`, `type`, `instruction_id`), then the agent-bound
 * message. The gateway validates the small envelope and forwards the message text as it is,
 * instead of validating and re-encoding a run of many tasks per agent (a large share of its CPU
 * per cycle), and nobody escapes the message into a JSON string and back. Only reconcilers
 * publish here; the agent validates every message it receives. Kicks are one JSON text.
 */
import { z } from 'zod';
import { parseJsonWith } from './parse-json.js';
import type { CancelMessage, RunMessage } from './protocol.js';

export type Instruction = RunMessage | CancelMessage;

export const InstructionEnvelope = z.object({
  kind: z.literal('instruction'),
  agent: z.string().min(1),
  /** When set, deliver only to this session; a reconnected agent gets a fresh plan instead. */
  session_id: z.string().min(1).nullable().default(null),
  type: z.enum(['run', 'cancel']),
  instruction_id: z.string().min(1),
});
/** The envelope plus the `run` or `cancel` message as the publisher encoded it. */
export type InstructionEnvelope = z.infer<typeof InstructionEnvelope> & { message_json: string };

export const KickEnvelope = z.object({
  kind: z.literal('kick'),
  agent: z.string().min(1),
  /** The session to close; a gateway holding any other session of that name ignores the kick. */
  session_id: z.string().min(1),
  /** The session that replaced it, for the log line and close reason. */
  by_gateway: z.string().min(1),
});
export type KickEnvelope = z.infer<typeof KickEnvelope>;

const Header = z.discriminatedUnion('kind', [InstructionEnvelope, KickEnvelope]);
/** One inbox stream entry, as the gateway reads it. */
export type InboxRecord = InstructionEnvelope | KickEnvelope;

/** What publishers hand over: an instruction as a message object, or a kick. */
export type InboxRecordInput =
  | { kind: 'instruction'; agent: string; session_id: string | null; message: Instruction }
  | KickEnvelope;

export function encodeInboxRecord(input: InboxRecordInput): string {
  if (input.kind === 'kick') return JSON.stringify(input);
  const { message, ...rest } = input;
  const header = { ...rest, type: message.type, instruction_id: message.instruction_id };
  return `${JSON.stringify(header)}\n${JSON.stringify(message)}`;
}

/** The record, or null when it is malformed (wrong framing, bad envelope, no message). */
export function decodeInboxRecord(text: string): InboxRecord | null {
  const nl = text.indexOf('\n');
  const header = parseJsonWith(Header, nl < 0 ? text : text.slice(0, nl));
  if (!header) return null;
  if (header.kind === 'kick') return nl < 0 ? header : null;
  const messageJson = nl < 0 ? '' : text.slice(nl + 1);
  return messageJson.length >= 2 ? { ...header, message_json: messageJson } : null;
}
