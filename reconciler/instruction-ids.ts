/**
 * Instruction ids for the instructions one reconcile job sends: self-authenticating ids issued to
 * the receiving agent (shared/identity/instruction-tag.ts), 96 unguessable bits, seeded by the job
 * (its id and creation time) and the agent's place in it, so a retried job re-sends the same ids
 * (the agent refuses an id it ran before). Safe in Redis keys, BullMQ job ids and the agent's
 * recent-id set (base64url).
 */
import { randomUUID } from 'node:crypto';
import { issueInstructionId } from '../shared/identity/instruction-tag.js';

export interface JobIdentity {
  id?: string | undefined;
  /** Creation time (ms). */
  timestamp: number;
}

/** The id of the instruction sent to `agent` (at `index` in a many-agent job; none for one). */
export type InstructionIdOf = (agent: string, index?: number) => string;

export function instructionIds(key: Buffer, job: JobIdentity): InstructionIdOf {
  const base = `${job.id ?? randomUUID()}\0${job.timestamp}`;
  return (agent, index) => issueInstructionId(key, agent, `${base}\0${index ?? ''}`);
}
