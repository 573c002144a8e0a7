/**
 * "Is what this connection wrote on a replica yet?" — Redis replication is asynchronous, so a write
 * the master acknowledged can vanish if the master dies before a replica has it. `WAIT 1 <timeout>`
 * on the connection that wrote blocks until a replica has everything that connection wrote. Only
 * asked when the master reports connected replicas (none: there is nothing to wait for, and no
 * replica a failover could promote either); the count is re-read at most every `refreshMs`, after
 * every reconnect (possibly to a new master) and after a WAIT that timed out.
 */
import type { RedisClient } from './client.js';

/** How often the master's replica count is re-read (INFO replication) at most. */
export const REPLICA_COUNT_REFRESH_MS = 5_000;

export type ReplicaAck =
  /** No replica connected: nothing waited for. */
  | { ok: true; replicas: 0 }
  /** A replica has every write this connection made. */
  | { ok: true; replicas: number }
  /** No replica confirmed within the timeout. */
  | { ok: false; replicas: number };

export interface ReplicaWait {
  /** After the writes to confirm, on the same connection. */
  confirm(): Promise<ReplicaAck>;
}

/** The `connected_slaves` of an INFO replication reply (0 on a replica or an unknown reply). */
export function connectedReplicas(info: string): number {
  if (!/^role:master\s*$/m.test(info)) return 0;
  const n = Number(/^connected_slaves:(\d+)\s*$/m.exec(info)?.[1]);
  return Number.isInteger(n) ? n : 0;
}

export interface ReplicaWaitOptions {
  /** WAIT's timeout; > 0. */
  timeoutMs: number;
  refreshMs?: number;
  now?: () => number;
  /**
   * Redis refused INFO or WAIT with an error reply (a managed Redis that disables or renames them,
   * an ACL without them): from then on nothing is waited for, rather than no result ever acked.
   */
  onUnavailable?: (error: string) => void;
}

/** An error reply from Redis (not a lost connection or a timeout). */
function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/** Not on a Redis Cluster client: WAIT has no key, so it would reach an arbitrary node. */
export function canWaitForReplicas(client: RedisClient): boolean {
  return (client as { isCluster?: boolean }).isCluster !== true;
}

/** A ReplicaWait on `client`, the connection whose writes it confirms. */
export function replicaWait(client: RedisClient, opts: ReplicaWaitOptions): ReplicaWait {
  const refreshMs = opts.refreshMs ?? REPLICA_COUNT_REFRESH_MS;
  const now = opts.now ?? Date.now;
  let replicas = 0;
  let readAt = Number.NEGATIVE_INFINITY;
  // A reconnect may have reached another master (a failover): read its replica count again.
  client.on('ready', () => {
    readAt = Number.NEGATIVE_INFINITY;
  });
  let unavailable = false;
  const confirm = async (): Promise<ReplicaAck> => {
    if (now() - readAt >= refreshMs) {
      replicas = connectedReplicas(await client.info('replication'));
      readAt = now();
    }
    if (replicas === 0) return { ok: true, replicas: 0 };
    const acked = Number(await client.call('WAIT', '1', String(opts.timeoutMs)));
    if (acked >= 1) return { ok: true, replicas: acked };
    readAt = Number.NEGATIVE_INFINITY;
    return { ok: false, replicas: acked };
  };
  return {
    async confirm() {
      if (unavailable) return { ok: true, replicas: 0 };
      try {
        return await confirm();
      } catch (err) {
        if (!isReplyError(err)) throw err;
        unavailable = true;
        opts.onUnavailable?.(err.message);
        return { ok: true, replicas: 0 };
      }
    },
  };
}
