/**
 * The registry entry of one connected agent, as stored in the Redis hash `keys.agent(name)`.
 * Pure encode/decode so readers (reconciler, HTTP API) and the gateway agree on the layout.
 */
import { z } from 'zod';
import { parseJsonWith } from './parse-json.js';
import { LabelsSchema } from './protocol.js';
import type { ExecutorType, Labels } from './types.js';

export interface RegistryEntry {
  name: string;
  labels: Labels;
  gateway_id: string;
  /** Changes on every connection; guards every write so an old session never clobbers a newer one. */
  session_id: string;
  /** Epoch milliseconds. */
  connected_at: number;
  /** Epoch milliseconds of the last register or heartbeat. */
  last_seen: number;
  agent_version: string;
  executors: ExecutorType[];
  /** Instruction ids the agent said it is running (register and every heartbeat): lets the
   * reconciler tell a long apply from an agent that lost the instruction. */
  running: string[];
}

/** Hash field → string value, in the order written. */
export function encodeRegistryEntry(entry: RegistryEntry): Record<string, string> {
  return {
    name: entry.name,
    labels: JSON.stringify(entry.labels),
    gateway_id: entry.gateway_id,
    session_id: entry.session_id,
    connected_at: String(entry.connected_at),
    last_seen: String(entry.last_seen),
    agent_version: entry.agent_version,
    executors: JSON.stringify(entry.executors),
    running: JSON.stringify(entry.running),
  };
}

const jsonString = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx): z.infer<T> => {
    const value = parseJsonWith(schema, text);
    if (value !== null) return value;
    ctx.addIssue({ code: 'custom', message: 'invalid JSON field' });
    return z.NEVER;
  });

const RegistryHash = z.object({
  name: z.string().min(1),
  labels: jsonString(LabelsSchema),
  gateway_id: z.string().min(1),
  session_id: z.string().min(1),
  connected_at: z.coerce.number().int().nonnegative(),
  last_seen: z.coerce.number().int().nonnegative(),
  agent_version: z.string(),
  executors: jsonString(z.array(z.enum(['shell', 'systemd', 'mise']))),
  running: jsonString(z.array(z.string()))
    .optional()
    .transform((r) => r ?? []),
});

/** Decode an HGETALL reply; null for a missing or partial hash (e.g. mid-expiry). */
export function decodeRegistryEntry(hash: Record<string, string>): RegistryEntry | null {
  const parsed = RegistryHash.safeParse(hash);
  return parsed.success ? parsed.data : null;
}
