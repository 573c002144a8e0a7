/**
 * An agent's `register`, as the gateway runs it: check the protocol version, the rate limits and
 * label limits (gateway/agent-admission.ts) and the token's scope, all before any Redis write; write the registry entry (replacing any older session of the name, here or on another
 * gateway), answer `registered`, replay what arrived meanwhile, and ask for a connect reconcile.
 */
import { randomUUID } from 'node:crypto';
import { checkScope } from '../shared/auth.js';
import { errorMessage } from '../shared/errors.js';
import { encodeInboxRecord } from '../shared/inbox-record.js';
import { connectReconcileJob } from '../shared/jobs/builders.js';
import { liveness } from '../shared/liveness.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode, PROTOCOL_VERSION, type RegisterMessage } from '../shared/protocol.js';
import type { Registry } from '../store/registry/registry.js';
import type { AgentAdmission } from './agent-admission.js';
import type { AgentConnection } from './agent-connection.js';
import { type GatewayEvents, safeEmit } from './gateway-events.js';
import type { JobQueue } from './result-forwarder.js';
import type { SessionTable } from './session-table.js';

export { TRY_AGAIN_LATER } from './agent-admission.js';

import { TRY_AGAIN_LATER } from './agent-admission.js';

export interface RegistrationDeps {
  gatewayId: string;
  heartbeatIntervalMs: number;
  registry: Registry;
  table: SessionTable;
  reconcile: JobQueue;
  events: GatewayEvents;
  logger: Logger;
  /** Appends a record to another gateway's inbox if it announced itself since `aliveSince`. */
  sendToGateway(gatewayId: string, text: string, aliveSince: number): Promise<unknown>;
  draining(): boolean;
  /** Rate limits and label limits, checked before anything is written. */
  admission: AgentAdmission;
  /** Answers `refused` and closes the socket. */
  refuse(conn: AgentConnection, reason: string): void;
  /** Closes the socket with a code (no `refused`: the agent retries with its usual backoff). */
  reject(conn: AgentConnection, code: number, reason: string): void;
  /** Handles a message that arrived while the registry write was in flight. */
  replay(conn: AgentConnection, text: string): void;
}

export class Registration {
  private readonly gatewayGoneMs: number;

  constructor(private readonly d: RegistrationDeps) {
    this.gatewayGoneMs = liveness(d.heartbeatIntervalMs).gatewayGoneMs;
  }

  async register(conn: AgentConnection, msg: RegisterMessage): Promise<void> {
    if (msg.v !== PROTOCOL_VERSION) {
      return this.d.refuse(
        conn,
        `protocol version ${msg.v} not supported (gateway speaks ${PROTOCOL_VERSION})`,
      );
    }
    const admitted = this.d.admission.register(conn.remote, conn.grant, msg.labels, Date.now());
    if (!admitted.ok) {
      if (admitted.code === TRY_AGAIN_LATER) return this.d.reject(conn, admitted.code, admitted.reason);
      return this.d.refuse(conn, admitted.reason);
    }
    const scope = checkScope(conn.grant, msg.name, msg.labels);
    if (!scope.ok) return this.d.refuse(conn, scope.reason);
    if (this.d.draining()) return conn.end(CloseCode.goingAway, 'gateway shutting down, reconnect');

    const now = Date.now();
    conn.phase = 'registering';
    conn.takesRetry = msg.features.includes('result_retry');
    conn.entry = {
      name: msg.name,
      labels: msg.labels,
      gateway_id: this.d.gatewayId,
      session_id: randomUUID(),
      connected_at: now,
      last_seen: now,
      agent_version: msg.agent_version,
      executors: msg.executors,
      running: msg.running,
    };
    // Local replacement first, so this gateway never serves two sessions of one name.
    this.d.table.claim(msg.name, conn)?.end(CloseCode.replaced, 'replaced by a newer session of this agent');
    let replaced: string | null = null;
    try {
      const previous = await this.d.registry.register(conn.entry);
      replaced = previous?.session_id ?? null;
      if (previous && previous.gateway_id !== this.d.gatewayId) {
        // The registry write is authoritative (the old gateway's next heartbeat would find it
        // replaced); the kick only makes the old socket go now rather than a heartbeat later.
        const kick = encodeInboxRecord({
          kind: 'kick',
          agent: msg.name,
          session_id: previous.session_id,
          by_gateway: this.d.gatewayId,
        });
        // A gone gateway took its sockets with it: no kick needed.
        await this.d.sendToGateway(previous.gateway_id, kick, Date.now() - this.gatewayGoneMs);
      }
    } catch (err) {
      conn.log().error({ err: errorMessage(err) }, 'registry write failed');
      if (!isClosed(conn)) conn.end(TRY_AGAIN_LATER, 'registry unavailable, retry later');
      else await this.d.registry.deregister(msg.name, conn.entry.session_id).catch(() => {});
      return;
    }
    if (isClosed(conn)) {
      // The socket went away while we wrote: its close handler could not deregister yet.
      await this.d.registry.deregister(msg.name, conn.entry.session_id).catch(() => {});
      return;
    }
    conn.phase = 'registered';
    conn.lastHeartbeat = now;
    conn.send({
      type: 'registered',
      v: PROTOCOL_VERSION,
      session_id: conn.entry.session_id,
      gateway_id: this.d.gatewayId,
      heartbeat_interval_ms: this.d.heartbeatIntervalMs,
    });
    conn.log().info({ labels: msg.labels, version: msg.agent_version, replaced }, 'agent registered');
    safeEmit(this.d.events, this.d.logger, 'agent:registered', {
      agent: msg.name,
      session_id: conn.entry.session_id,
      replaced,
    });
    const backlog = conn.backlog ?? [];
    conn.backlog = null;
    for (const text of backlog) if (conn.phase === 'registered') this.d.replay(conn, text);
    await this.enqueueReconcile(conn);
  }

  /** After a connect, or a registry entry rebuilt: reconcile the agent now. */
  async enqueueReconcile(conn: AgentConnection): Promise<void> {
    const job = connectReconcileJob(conn.agent);
    try {
      await this.d.reconcile.add(job.name, job.data, job.opts);
    } catch (err) {
      // Without its connect reconcile the agent would wait a full drift interval; make it retry.
      conn.log().error({ err: errorMessage(err) }, 'cannot enqueue connect reconcile');
      conn.end(TRY_AGAIN_LATER, 'cannot schedule reconcile, retry later');
    }
  }
}

/** Re-reads the phase after an await (TypeScript keeps the narrowing from before it). */
function isClosed(conn: AgentConnection): boolean {
  return conn.phase === 'closed';
}
