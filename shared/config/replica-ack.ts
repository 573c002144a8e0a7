/**
 * `server.redis.replica_ack_timeout`: how long a gateway waits for a replica to confirm a batch of
 * results (Redis `WAIT 1 <timeout>`) before acknowledging it to the agents. "0s" turns it off.
 */
import { DurationError, parseWholeMs } from '../duration.js';
import type { ConfigBodyReader } from './config-body-reader.js';

export const DEFAULT_REPLICA_ACK_TIMEOUT_MS = 1_000;
/** Well under the gateway's 10 s enqueue timeout, which also bounds the wait. */
export const MAX_REPLICA_ACK_TIMEOUT_MS = 5_000;

export function readReplicaAckTimeout(r: ConfigBodyReader): number {
  const name = 'replica_ack_timeout';
  const s = r.string(name);
  if (s === undefined) return DEFAULT_REPLICA_ACK_TIMEOUT_MS;
  try {
    const ms = parseWholeMs(s);
    if (ms >= 0 && ms <= MAX_REPLICA_ACK_TIMEOUT_MS) return ms;
    r.error(
      name,
      `must be from "0s" (off) to "${MAX_REPLICA_ACK_TIMEOUT_MS / 1000}s", got ${JSON.stringify(s)}`,
      r.lineOf(name),
    );
  } catch (err) {
    if (!(err instanceof DurationError)) throw err;
    r.error(name, err.message, r.lineOf(name));
  }
  return DEFAULT_REPLICA_ACK_TIMEOUT_MS;
}
