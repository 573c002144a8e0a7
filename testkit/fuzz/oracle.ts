/**
 * What the gateway should do with a frame in a connection phase, decided from the protocol's own
 * schema (so the fuzzer follows shared/protocol.ts as it changes) plus a few invariants that hold
 * whatever the schema says (an agent name the agent's own config would refuse is never registered).
 */
import { AGENT_NAME } from '../../shared/config/agent-config.js';
import { type AgentMessage, PROTOCOL_VERSION, parseAgentMessage } from '../../shared/protocol.js';
import type { FuzzFrame } from './mutate.js';

/** before register · register sent, `registered` not yet received · registered. */
export type FuzzPhase = 'new' | 'registering' | 'registered';
export const PHASES: readonly FuzzPhase[] = ['new', 'registering', 'registered'];

/** `refuse`: must be closed; `accept`: a well-formed message for the phase (newer checks may still refuse it). */
export type Expectation = 'refuse' | 'accept';

export interface Judgement {
  expect: Expectation;
  /** Why, for refusals: the schema's error, the phase, the size. */
  why: string;
  message: AgentMessage | null;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function judge(frame: FuzzFrame, phase: FuzzPhase, maxPayloadBytes: number): Judgement {
  const refuse = (why: string): Judgement => ({ expect: 'refuse', why, message: null });
  if (frame.bytes.length > maxPayloadBytes) return refuse('too large');
  if (frame.binary) return refuse('binary');
  let text: string;
  try {
    text = decoder.decode(frame.bytes);
  } catch {
    return refuse('invalid UTF-8');
  }
  const parsed = parseAgentMessage(text);
  if (!parsed.ok) return refuse(parsed.error);
  const message = parsed.message;
  if (phase === 'new') {
    if (message.type !== 'register') return refuse('wrong phase: expected register');
    if (message.v !== PROTOCOL_VERSION) return refuse('protocol version');
    return { expect: 'accept', why: '', message };
  }
  if (message.type === 'register') return refuse('wrong phase: already registered');
  return { expect: 'accept', why: '', message };
}

/** C0 controls, DEL, C1 controls: never part of a name or label an operator would read. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Reasons a register the gateway answered with `registered` should have been refused, whatever the
 * schema says today: a name the agent's own config refuses (AGENT_NAME), control characters in
 * labels, a labels object whose prototype a `__proto__` key replaced.
 */
export function wrongRegistration(message: AgentMessage | null): string[] {
  if (message?.type !== 'register') return [];
  const out: string[] = [];
  if (!AGENT_NAME.test(message.name))
    out.push(`name ${JSON.stringify(message.name.slice(0, 40))} fails AGENT_NAME`);
  for (const [k, v] of Object.entries(message.labels)) {
    if (hasControl(k) || hasControl(v))
      out.push(`label ${JSON.stringify(k.slice(0, 40))} has control characters`);
  }
  if (Object.getPrototypeOf(message.labels) !== Object.prototype) out.push('labels prototype replaced');
  return out;
}
