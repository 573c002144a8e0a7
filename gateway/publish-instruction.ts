/**
 * How the reconciler hands an instruction to whichever gateway holds the agent: look the agent up in
 * the registry, PUBLISH on that gateway's channel. Pub/sub is fire-and-forget, so both ends report
 * failure: here when nobody holds the agent or nobody listens, and on the gateway (a results job of
 * kind `undeliverable`) when the listener no longer holds that agent or session.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../shared/keys.js';
import { encodeChannelMessage, type Instruction } from './gateway-channel.js';
import { decodeRegistryEntry, type RegistryEntry } from './registry-entry.js';

export type PublishOutcome =
  | { status: 'published'; gateway_id: string; session_id: string }
  | { status: 'undeliverable'; reason: string };

/**
 * `target` is the agent name (looked up now) or a registry entry the caller just read (saves a round
 * trip and pins the session the plan was made for).
 */
export async function publishInstruction(
  redis: Redis,
  keys: Keys,
  target: string | RegistryEntry,
  message: Instruction,
): Promise<PublishOutcome> {
  const entry =
    typeof target === 'string' ? decodeRegistryEntry(await redis.hgetall(keys.agent(target))) : target;
  if (!entry) return { status: 'undeliverable', reason: 'agent not connected' };
  const receivers = await redis.publish(
    keys.gatewayChannel(entry.gateway_id),
    encodeChannelMessage({ kind: 'instruction', agent: entry.name, session_id: entry.session_id, message }),
  );
  if (receivers === 0) {
    return { status: 'undeliverable', reason: `gateway ${entry.gateway_id} is not listening` };
  }
  return { status: 'published', gateway_id: entry.gateway_id, session_id: entry.session_id };
}
