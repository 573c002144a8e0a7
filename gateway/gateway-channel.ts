/**
 * What travels on a gateway's Redis channel (`keys.gatewayChannel(gatewayId)`): instructions for an
 * agent it holds, and kicks telling it that a newer session of one of its agents registered elsewhere.
 * Pure schema; publishers use `publishInstruction` / `encodeChannelMessage`.
 */
import { z } from 'zod';
import { CancelMessage, RunMessage } from '../shared/protocol.js';

export const InstructionEnvelope = z.object({
  kind: z.literal('instruction'),
  agent: z.string().min(1),
  /** When set, deliver only to this session; a reconnected agent gets a fresh plan instead. */
  session_id: z.string().min(1).nullable().default(null),
  message: z.discriminatedUnion('type', [RunMessage, CancelMessage]),
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
export type Instruction = InstructionEnvelope['message'];

export function encodeChannelMessage(message: z.input<typeof ChannelMessage>): string {
  return JSON.stringify(message);
}

export function decodeChannelMessage(text: string): ChannelMessage | null {
  try {
    const parsed = ChannelMessage.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
