/**
 * What travels on a gateway's Redis channel (`keys.gatewayChannel(gatewayId)`): instructions for an
 * agent it holds, and kicks telling it that a newer session of one of its agents registered elsewhere.
 * Pure schema; publishers use `publishInstruction` / `encodeChannelMessage`.
 *
 * An instruction carries the agent-bound message as JSON text (`message_json`), with its `type` and
 * `instruction_id` beside it: the gateway forwards the text as it is instead of validating and
 * re-encoding a run of many tasks per agent (which was a large share of its CPU per cycle). Only
 * reconcilers publish here; the agent validates every message it receives.
 */
import { z } from 'zod';
import type { CancelMessage, RunMessage } from '../shared/protocol.js';

export type Instruction = RunMessage | CancelMessage;

export const InstructionEnvelope = z.object({
  kind: z.literal('instruction'),
  agent: z.string().min(1),
  /** When set, deliver only to this session; a reconnected agent gets a fresh plan instead. */
  session_id: z.string().min(1).nullable().default(null),
  type: z.enum(['run', 'cancel']),
  instruction_id: z.string().min(1),
  /** The `run` or `cancel` message, encoded once by the publisher. */
  message_json: z.string().min(2),
});
export type InstructionEnvelope = z.infer<typeof InstructionEnvelope>;

export const KickEnvelope = z.object({
  kind: z.literal('kick'),
  agent: z.string().min(1),
  /** The session to close; a gateway holding any other session of that name ignores the kick. */
  session_id: z.string().min(1),
  /** The session that replaced it, for the log line and close reason. */
  by_gateway: z.string().min(1),
});
export type KickEnvelope = z.infer<typeof KickEnvelope>;

export const ChannelMessage = z.discriminatedUnion('kind', [InstructionEnvelope, KickEnvelope]);
export type ChannelMessage = z.infer<typeof ChannelMessage>;

/** What publishers hand over: an instruction as a message object, or a kick. */
export type ChannelInput =
  | { kind: 'instruction'; agent: string; session_id: string | null; message: Instruction }
  | KickEnvelope;

export function encodeChannelMessage(input: ChannelInput): string {
  if (input.kind === 'kick') return JSON.stringify(input);
  const { message, ...rest } = input;
  return JSON.stringify({
    ...rest,
    type: message.type,
    instruction_id: message.instruction_id,
    message_json: JSON.stringify(message),
  });
}

export function decodeChannelMessage(text: string): ChannelMessage | null {
  try {
    const parsed = ChannelMessage.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
