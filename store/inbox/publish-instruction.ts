/**
 * How the reconciler hands an instruction to whichever gateway holds the agent: look the agent up
 * in the registry, append to that gateway's inbox stream (gateway/gateway-inbox.ts). Both ends
 * report failure: here when nobody holds the agent or its gateway has not announced itself
 * lately, and on the gateway (a results job of kind `undeliverable`) when it no longer holds that
 * agent or session.
 */

import { encodeInboxRecord, type Instruction } from '../../shared/inbox-record.js';
import type { Keys } from '../../shared/keys.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, liveness } from '../../shared/liveness.js';
import { decodeRegistryEntry, type RegistryEntry } from '../../shared/registry-entry.js';
import type { RedisClient } from '../redis/client.js';
import { type InboxBatcher, sendToGateway } from './gateway-inbox.js';

export type PublishOutcome =
  | { status: 'published'; gateway_id: string; session_id: string }
  | { status: 'undeliverable'; reason: string };

/** A gateway that has not announced itself for this long is taken for gone (3 × the default heartbeat). */
export const DEFAULT_GATEWAY_STALE_MS = liveness(DEFAULT_HEARTBEAT_INTERVAL_MS).gatewayGoneMs;

/**
 * `target` is the agent name (looked up now) or a registry entry the caller just read (saves a round
 * trip and pins the session the plan was made for). `via`: an InboxBatcher, which carries the
 * gateway staleness and lets the sends of one event-loop turn share entries; or the staleness
 * itself (3 × `heartbeat_interval`), for a send of its own.
 */
export async function publishInstruction(
  redis: RedisClient,
  keys: Keys,
  target: string | RegistryEntry,
  message: Instruction,
  via: InboxBatcher | number = DEFAULT_GATEWAY_STALE_MS,
): Promise<PublishOutcome> {
  const entry =
    typeof target === 'string' ? decodeRegistryEntry(await redis.hgetall(keys.agent(target))) : target;
  if (!entry) return { status: 'undeliverable', reason: 'agent not connected' };
  const text = encodeInboxRecord({
    kind: 'instruction',
    agent: entry.name,
    session_id: entry.session_id,
    message,
  });
  const sent =
    typeof via === 'number'
      ? await sendToGateway(redis, keys, entry.gateway_id, text, Date.now() - via)
      : await via.send(entry.gateway_id, text);
  if (!sent) return { status: 'undeliverable', reason: `gateway ${entry.gateway_id} is not listening` };
  return { status: 'published', gateway_id: entry.gateway_id, session_id: entry.session_id };
}
