/**
 * Self-authenticating instruction ids. An instruction id is `i` + base64url(nonce) +
 * base64url(tag), 12 bytes each (33 characters):
 *   nonce = HMAC-SHA256(key, "fluke-instruction-nonce\0" + seed)[0..12]
 *   tag   = HMAC-SHA256(key, "fluke-instruction-agent\0" + agent + "\0" + nonce)[0..12]
 * The nonce is 96 bits no one without the key can predict, and the same seed gives the same id
 * (a retried reconcile job re-sends the ids it sent, which the agent refuses to run twice). The
 * tag binds the id to the agent it was issued to: any process holding the key checks that
 * statelessly (`instructionBelongsTo`), with a constant-time compare. Execution ids are
 * `${instruction}.${index}` (shared/plan.ts), so `executionBelongsTo` checks their instruction part.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const PART_BYTES = 12;
/** base64url of 12 bytes: 16 characters, no padding. */
const PART_CHARS = 16;
export const INSTRUCTION_ID_LENGTH = 1 + 2 * PART_CHARS;
const ID_SHAPE = /^i[A-Za-z0-9_-]{32}$/;

function hmac(key: Buffer, ...parts: Array<string | Buffer>): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, PART_BYTES);
}

function tagOf(key: Buffer, agent: string, nonce: Buffer): Buffer {
  return hmac(key, 'fluke-instruction-agent\0', agent, '\0', nonce);
}

/** The instruction id issued to `agent` for `seed` (stable: the same inputs give the same id). */
export function issueInstructionId(key: Buffer, agent: string, seed: string): string {
  const nonce = hmac(key, 'fluke-instruction-nonce\0', seed);
  return `i${nonce.toString('base64url')}${tagOf(key, agent, nonce).toString('base64url')}`;
}

/** Whether `id` is an instruction id issued to `agent` under `key`. */
export function instructionBelongsTo(key: Buffer, agent: string, id: string): boolean {
  if (id.length !== INSTRUCTION_ID_LENGTH || !ID_SHAPE.test(id)) return false;
  const nonce = Buffer.from(id.slice(1, 1 + PART_CHARS), 'base64url');
  const tag = Buffer.from(id.slice(1 + PART_CHARS), 'base64url');
  // A non-canonical encoding (stray low bits in the last character) decodes to the same bytes:
  // only the exact text we issue is accepted.
  if (nonce.length !== PART_BYTES || tag.length !== PART_BYTES) return false;
  if (`i${nonce.toString('base64url')}${tag.toString('base64url')}` !== id) return false;
  return timingSafeEqual(tag, tagOf(key, agent, nonce));
}

/** The instruction part of an execution id (`<instruction>.<index>`), or null. */
export function instructionOfExecution(executionId: string): string | null {
  const dot = executionId.lastIndexOf('.');
  if (dot <= 0 || dot === executionId.length - 1) return null;
  const index = executionId.slice(dot + 1);
  return /^(0|[1-9][0-9]{0,5})$/.test(index) ? executionId.slice(0, dot) : null;
}

/** Whether `executionId` is an execution of an instruction issued to `agent`. */
export function executionBelongsTo(key: Buffer, agent: string, executionId: string): boolean {
  const instruction = instructionOfExecution(executionId);
  return instruction !== null && instructionBelongsTo(key, agent, instruction);
}

/** Whether `executionId` is an execution of `instructionId` (`<instruction>.<index>`). */
export function executionOf(instructionId: string, executionId: string): boolean {
  return instructionOfExecution(executionId) === instructionId;
}
