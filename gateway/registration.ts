/**
 * An agent's `register`, as the gateway runs it: check the protocol version, the rate limits and
 * label limits (gateway/agent-admission.ts), the identity (a credential registers its own name
 * only) and the grant's scope, all before any Redis write; claim the name's enrollment record
 * (another identity holding it is refused `name_held`, and its session is left alone), write the
 * registry entry (replacing any older session of the same identity, here or on another gateway),
 * answer `registered` (with a fresh credential for an agent enrolling), replay what arrived
 * meanwhile, and ask for a connect reconcile.
 */
import { randomUUID } from 'node:crypto';
import { checkScope } from '../shared/auth.js';
import { errorMessage } from '../shared/errors.js';
import { credentialFingerprint } from '../shared/identity/agent-credential.js';
import { type Claimant, type ClaimTerms, claimTerms, nameHeldReason } from '../shared/identity/enrollment.js';
import { encodeInboxRecord } from '../shared/inbox-record.js';
import { liveness } from '../shared/liveness.js';
import type { Logger } from '../shared/logger.js';
import {
  CloseCode,
  PROTOCOL_VERSION,
  type RegisterMessage,
  type RegisterRefusalCode,
} from '../shared/protocol.js';
import type { Registry } from '../store/registry/registry.js';
import type { AgentAdmission } from './agent-admission.js';
import type { AgentConnection } from './agent-connection.js';
import type { ConnectChecks } from './connect-checks.js';
import { type GatewayEvents, safeEmit } from './gateway-events.js';
import type { GatewayIdentity } from './gateway-identity.js';
import type { SessionTable } from './session-table.js';

export { TRY_AGAIN_LATER } from './agent-admission.js';

import { TRY_AGAIN_LATER } from './agent-admission.js';

export interface RegistrationDeps {
  gatewayId: string;
  heartbeatIntervalMs: number;
  registry: Registry;
  table: SessionTable;
  /** Connect checks, coalesced per gateway (gateway/connect-checks.ts). */
  connectChecks: ConnectChecks;
  events: GatewayEvents;
  logger: Logger;
  /** Appends a record to another gateway's inbox if it announced itself since `aliveSince`. */
  sendToGateway(gatewayId: string, text: string, aliveSince: number): Promise<unknown>;
  draining(): boolean;
  identity: GatewayIdentity;
  /** Rate limits and label limits, checked before anything is written. */
  admission: AgentAdmission;
  /** Answers `refused` (with its machine code) and closes the socket. */
  refuse(conn: AgentConnection, reason: string, code: RegisterRefusalCode): void;
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
        'version',
      );
    }
    const admitted = this.d.admission.register(conn.remote, conn.grant, msg.labels, Date.now());
    if (!admitted.ok) {
      if (admitted.code === TRY_AGAIN_LATER) return this.d.reject(conn, admitted.code, admitted.reason);
      return this.d.refuse(conn, admitted.reason, 'limits');
    }
    const claim = this.identityClaim(conn, msg);
    if (!claim.ok) return this.d.refuse(conn, claim.reason, claim.code);
    const scope = checkScope(conn.grant, msg.name, msg.labels);
    if (!scope.ok) return this.d.refuse(conn, scope.reason, 'scope');
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
    // The name first: a refused claim must not disturb the session that holds it.
    if (!(await this.claimName(conn, claim.terms))) return;
    // Local replacement first, so this gateway never serves two sessions of one name.
    this.d.table.claim(msg.name, conn)?.end(CloseCode.replaced, 'replaced by a newer session of this agent');
    let replaced: string | null = null;
    let kicking: Promise<unknown> = Promise.resolve();
    try {
      const previous = await this.d.registry.register(conn.entry);
      replaced = previous?.session_id ?? null;
      if (previous && previous.gateway_id !== this.d.gatewayId) kicking = this.kick(conn, previous);
    } catch (err) {
      conn.log().error({ err: errorMessage(err) }, 'registry write failed');
      if (!isClosed(conn)) conn.end(TRY_AGAIN_LATER, 'registry unavailable, retry later');
      else await this.d.registry.deregister(msg.name, conn.entry.session_id).catch(() => {});
      return;
    }
    if (isClosed(conn)) {
      // The socket went away while we wrote: its close handler could not deregister yet.
      await this.d.registry.deregister(msg.name, conn.entry.session_id).catch(() => {});
      await kicking;
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
      ...(claim.credential ? { credential: claim.credential } : {}),
    });
    conn.log().info(
      {
        labels: msg.labels,
        version: msg.agent_version,
        replaced,
        auth: conn.auth.kind,
        grant: conn.auth.grant_id,
        identity: conn.identity,
        enrolled: claim.credential !== null,
      },
      'agent registered',
    );
    safeEmit(this.d.events, this.d.logger, 'agent:registered', {
      agent: msg.name,
      session_id: conn.entry.session_id,
      replaced,
    });
    const backlog = conn.backlog ?? [];
    conn.backlog = null;
    for (const text of backlog) if (conn.phase === 'registered') this.d.replay(conn, text);
    await Promise.all([this.enqueueReconcile(conn), kicking]);
  }

  /**
   * The registry write is authoritative (the old gateway's next heartbeat would find it replaced);
   * the kick only makes the old socket go now rather than a heartbeat later. A gone gateway took
   * its sockets with it: no kick needed. Off the registration's path (a storm after a gateway died
   * sends one per agent): `registered` need not wait for it, and a failed kick is only logged.
   */
  private kick(
    conn: AgentConnection,
    previous: { gateway_id: string; session_id: string },
  ): Promise<unknown> {
    const kick = encodeInboxRecord({
      kind: 'kick',
      agent: conn.agent,
      session_id: previous.session_id,
      by_gateway: this.d.gatewayId,
    });
    return this.d
      .sendToGateway(previous.gateway_id, kick, Date.now() - this.gatewayGoneMs)
      .catch((err: unknown) =>
        conn
          .log()
          .warn({ err: errorMessage(err) }, 'cannot kick the older session; its gateway finds it replaced'),
      );
  }

  /**
   * Who is registering, as enrollment sees it: a credential (its own name only), an agent that
   * enrolls (a credential is minted for it, sent in `registered` if the claim wins), or a legacy
   * agent. Refusals that need no record are decided here.
   */
  private identityClaim(
    conn: AgentConnection,
    msg: RegisterMessage,
  ):
    | { ok: true; terms: ClaimTerms; credential: string | null }
    | { ok: false; code: RegisterRefusalCode; reason: string } {
    const { identity } = this.d;
    const auth = conn.auth;
    const nowS = Math.floor(Date.now() / 1000);
    let claimant: Claimant;
    let credential: string | null = null;
    if (auth.kind === 'credential') {
      const { grant_id: grant, fingerprint, issued_at, generation } = auth;
      claimant = { kind: 'credential', grant, fingerprint, issued_at, generation };
    } else if (msg.features.includes('identity')) {
      credential = identity.mint(msg.name, auth.grant_id, nowS);
      claimant = {
        kind: 'enroll',
        grant: auth.grant_id,
        fingerprint: credentialFingerprint(credential),
        issued_at: nowS,
      };
    } else {
      claimant = { kind: 'legacy', grant: auth.grant_id, now_s: nowS };
    }
    const decision = claimTerms(
      identity.policy(),
      msg.name,
      claimant,
      auth.kind === 'credential' ? auth.name : null,
    );
    if (!decision.ok) return decision;
    return { ok: true, terms: decision.terms, credential };
  }

  /** Claims the enrollment record; false (the socket refused or ended) when it did not win. */
  private async claimName(conn: AgentConnection, terms: ClaimTerms): Promise<boolean> {
    let outcome: Awaited<ReturnType<GatewayIdentity['enrollments']['claim']>>;
    try {
      outcome = await this.d.identity.enrollments.claim(terms);
    } catch (err) {
      conn.log().error({ err: errorMessage(err) }, 'enrollment claim failed');
      if (!isClosed(conn)) conn.end(TRY_AGAIN_LATER, 'registry unavailable, retry later');
      return false;
    }
    if (!outcome.ok) {
      conn
        .log()
        .warn({ holder: outcome.holder, claimant: terms.record.identity }, 'name held by another identity');
      if (!isClosed(conn)) this.d.refuse(conn, nameHeldReason(terms.name), outcome.code);
      return false;
    }
    conn.identity = terms.record.identity;
    conn.claimedAt = Date.now();
    return !isClosed(conn);
  }

  /** After a connect, or a registry entry rebuilt: reconcile the agent now (with others). */
  async enqueueReconcile(conn: AgentConnection): Promise<void> {
    if (await this.d.connectChecks.request(conn.agent)) return;
    // Without its connect reconcile the agent would wait a full drift interval; make it retry.
    if (!isClosed(conn)) conn.end(TRY_AGAIN_LATER, 'cannot schedule reconcile, retry later');
  }
}

/** Re-reads the phase after an await (TypeScript keeps the narrowing from before it). */
function isClosed(conn: AgentConnection): boolean {
  return conn.phase === 'closed';
}
