/**
 * The agent protocol as the gateway runs it: phases, message routing, closes and silence. The
 * parts live next door: registration (gateway/registration.ts), heartbeats on their way to the
 * registry (gateway/heartbeat-batcher.ts), receipts and results (gateway/result-intake.ts). No
 * uWS or Redis types leak in: sockets arrive as AgentConnection, storage goes through the
 * Registry port and the queues through JobQueue.
 */
import { errorMessage } from '../shared/errors.js';
import { liveness } from '../shared/liveness.js';
import type { Logger } from '../shared/logger.js';
import {
  type AgentMessage,
  CloseCode,
  parseAgentMessage,
  type RegisterRefusalCode,
  type ResultsItem,
} from '../shared/protocol.js';
import { assertNever } from '../shared/types.js';
import type { GatewayInbox } from '../store/inbox/inbox.js';
import type { OutputPublisher } from '../store/output/output-publisher.js';
import type { Registry } from '../store/registry/registry.js';
import type { AgentAdmission } from './agent-admission.js';
import type { AgentConnection } from './agent-connection.js';
import type { Frame } from './agent-endpoint.js';
import { CONNECT_CHECK_WINDOW_MS, ConnectChecks } from './connect-checks.js';
import { type GatewayEventMap, type GatewayEvents, safeEmit } from './gateway-events.js';
import type { GatewayIdentity } from './gateway-identity.js';
import type { GatewayMetricsPort } from './gateway-metrics.js';
import { HeartbeatBatcher } from './heartbeat-batcher.js';
import { Registration } from './registration.js';
import type { JobQueue, ResultForwarder } from './result-forwarder.js';
import type { ResultGuard } from './result-guard.js';
import { ResultIntake } from './result-intake.js';
import type { SessionTable } from './session-table.js';

export interface SessionControllerDeps {
  gatewayId: string;
  heartbeatIntervalMs: number;
  /** Messages an agent may send while its registration is being written, before we give up on it. */
  maxBacklog: number;
  registry: Registry;
  table: SessionTable;
  forwarder: ResultForwarder;
  output: OutputPublisher;
  /** Drops what was not issued to the sending agent, and output that is not live or too fast. */
  guard: ResultGuard;
  queues: { results: JobQueue; reconcile: JobQueue };
  /** For kicks in other gateways' inboxes. */
  inbox: Pick<GatewayInbox, 'send'>;
  events: GatewayEvents;
  logger: Logger;
  /** The identity key, policy and enrollment records (gateway/gateway-identity.ts). */
  identity: GatewayIdentity;
  /** Registration rate limits and label limits (gateway/agent-admission.ts). */
  admission: AgentAdmission;
  /** Message counts and instruction latency (gateway/gateway-metrics.ts). */
  metrics?: Pick<GatewayMetricsPort, 'received'>;
  /** Connect checks registered within this long leave as one job (gateway/connect-checks.ts). */
  connectCheckWindowMs?: number;
}

export class SessionController {
  /** Registry writes in flight; drain waits for them so no entry outlives its socket. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly beats: HeartbeatBatcher;
  private readonly registration: Registration;
  private readonly connectChecks: ConnectChecks;
  private readonly results: ResultIntake;
  private readonly silenceMs: number;
  draining = false;

  constructor(private readonly d: SessionControllerDeps) {
    this.silenceMs = liveness(d.heartbeatIntervalMs).silenceMs;
    this.connectChecks = new ConnectChecks({
      queue: d.queues.reconcile,
      windowMs: d.connectCheckWindowMs ?? CONNECT_CHECK_WINDOW_MS,
      logger: d.logger,
    });
    this.registration = new Registration({
      gatewayId: d.gatewayId,
      heartbeatIntervalMs: d.heartbeatIntervalMs,
      registry: d.registry,
      table: d.table,
      connectChecks: this.connectChecks,
      events: d.events,
      logger: d.logger,
      sendToGateway: (gatewayId, text, aliveSince) => d.inbox.send(gatewayId, text, aliveSince),
      draining: () => this.draining,
      identity: d.identity,
      admission: d.admission,
      refuse: (conn, reason, code) => this.refuse(conn, reason, code),
      reject: (conn, code, reason) => this.reject(conn, code, reason),
      replay: (conn, text) => this.handle(conn, text),
    });
    this.beats = new HeartbeatBatcher({
      heartbeatIntervalMs: d.heartbeatIntervalMs,
      registry: d.registry,
      logger: d.logger,
      track: (p) => this.track(p),
      replaced: (conn) => conn.end(CloseCode.replaced, 'replaced by a newer session of this agent'),
      rebuilt: (conn) => {
        // Redis lost the entry (flush, restart, lapse): it is back; reconcile as after a connect.
        conn.log().info('registry entry rebuilt');
        this.emit('registry:rebuilt', { agent: conn.agent });
        void this.track(this.registration.enqueueReconcile(conn));
      },
    });
    this.results = new ResultIntake({
      forwarder: d.forwarder,
      output: d.output,
      events: d.events,
      logger: d.logger,
    });
  }

  private emit<K extends keyof GatewayEventMap>(name: K, ...args: GatewayEventMap[K]): void {
    safeEmit(this.d.events, this.d.logger, name, ...args);
  }

  /** Remember a Redis write until it settles (drain waits for all of them). */
  track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise)).catch(() => {});
    return promise;
  }

  /** Sends the heartbeats still waiting, then waits for every registry write in flight. */
  async settled(): Promise<void> {
    this.beats.flushNow();
    await this.connectChecks.flushNow();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Reconcile every registered agent here as after a connect (a lost Redis node: gateway.ts). */
  async recheckAll(): Promise<void> {
    const conns = this.d.table.all().filter((c) => c.phase === 'registered');
    await this.track(Promise.all(conns.map((c) => this.registration.enqueueReconcile(c))));
  }

  opened(conn: AgentConnection): void {
    this.d.table.add(conn);
  }

  message(conn: AgentConnection, frame: Frame): void {
    if (conn.phase === 'closed') return;
    if (!frame.ok) {
      this.reject(conn, frame.code, frame.reason);
    } else if (conn.phase === 'registering') {
      const backlog = conn.backlog ?? [];
      if (backlog.length >= this.d.maxBacklog) this.reject(conn, CloseCode.wrongPhase, 'wait for registered');
      else backlog.push(frame.text);
      conn.backlog = backlog;
    } else {
      this.handle(conn, frame.text);
    }
  }

  private handle(conn: AgentConnection, text: string): void {
    const parsed = parseAgentMessage(text);
    const metrics = this.d.metrics;
    if (!parsed.ok) {
      metrics?.received(null);
      this.reject(conn, CloseCode.badMessage, parsed.error);
      return;
    }
    const msg: AgentMessage = parsed.message;
    if (metrics) {
      // A batch counts as the messages it carries.
      if (msg.type === 'results') for (const item of msg.messages) metrics.received(item);
      else metrics.received(msg);
    }
    if (msg.type === 'register') {
      if (conn.phase === 'new') void this.track(this.registration.register(conn, msg));
      else this.reject(conn, CloseCode.wrongPhase, 'already registered');
      return;
    }
    if (conn.phase !== 'registered') {
      this.reject(conn, CloseCode.wrongPhase, `expected register, got ${msg.type}`);
      return;
    }
    switch (msg.type) {
      case 'heartbeat':
        this.heartbeat(conn, msg.running);
        break;
      case 'instruction_receipt':
      case 'check_result':
      case 'step_result':
      case 'task_result':
        this.take(conn, [msg]);
        break;
      case 'results':
        this.take(conn, msg.messages);
        break;
      case 'output':
        if (this.d.guard.output(conn, msg)) this.d.output.push(conn.agent, msg);
        break;
      default:
        assertNever(msg, 'agent message');
    }
  }

  private take(conn: AgentConnection, items: readonly ResultsItem[]): void {
    const issued = this.d.guard.results(conn, items);
    if (issued.length > 0) this.results.take(conn, issued);
  }

  private heartbeat(conn: AgentConnection, running: string[]): void {
    const now = Date.now();
    conn.lastHeartbeat = now;
    if (conn.entry) {
      conn.entry.running = running;
      conn.entry.last_seen = now;
    }
    this.beats.add(conn);
  }

  private reject(conn: AgentConnection, code: number, reason: string, refusal?: RegisterRefusalCode): void {
    conn.log().warn({ code, reason, refusal, remote: conn.remote }, 'closing agent socket');
    this.emit('agent:refused', { agent: conn.entry?.name ?? null, code, reason, refusal });
    conn.end(code, reason);
  }

  private refuse(conn: AgentConnection, reason: string, code: RegisterRefusalCode): void {
    conn.send({ type: 'refused', reason, code });
    this.reject(conn, CloseCode.refused, reason, code);
  }

  closed(conn: AgentConnection, code: number, reason: string): void {
    const wasRegistered = conn.phase === 'registered';
    const cause = conn.closeCause ?? { code, reason };
    conn.detach();
    this.d.table.remove(conn);
    this.beats.remove(conn);
    const entry = conn.entry;
    if (wasRegistered && entry) {
      conn.log().info(cause, 'agent disconnected');
      void this.track(
        this.d.registry.deregister(entry.name, entry.session_id).catch((err: unknown) => {
          conn.log().warn({ err: errorMessage(err) }, 'deregister failed; the entry will expire');
        }),
      );
    }
    this.emit('agent:closed', {
      agent: entry?.name ?? null,
      session_id: entry?.session_id ?? null,
      ...cause,
    });
  }

  /** Close what went silent: registered without a heartbeat for too long, or never registered. */
  sweep(now: number, registerTimeoutMs: number): void {
    const renew: AgentConnection[] = [];
    for (const conn of this.d.table.all()) {
      if (
        conn.phase === 'registered' &&
        conn.identity &&
        now - conn.claimedAt > this.d.identity.renewAfterMs
      ) {
        renew.push(conn);
      }
      if (conn.phase === 'registered' && now - conn.lastHeartbeat > this.silenceMs) {
        conn.end(CloseCode.slow, `no heartbeat for ${now - conn.lastHeartbeat}ms`);
      } else if (conn.phase === 'new' && now - conn.openedAt > registerTimeoutMs) {
        this.reject(conn, CloseCode.slow, 'no register message');
      }
    }
    if (renew.length > 0) this.renewEnrollments(now, renew);
  }

  /** A session longer than the enrollment TTL keeps its name: its record is renewed while it lasts. */
  private renewEnrollments(now: number, conns: AgentConnection[]): void {
    for (const conn of conns) conn.claimedAt = now;
    const held = conns.map((c) => ({ name: c.agent, identity: c.identity as string }));
    const ttlMs = this.d.identity.renewAfterMs * 2;
    void this.track(
      this.d.identity.enrollments.touch(held, ttlMs).catch((err: unknown) => {
        this.d.logger.warn({ err: errorMessage(err) }, 'enrollment renewal failed; retried next sweep');
        for (const conn of conns) conn.claimedAt = 0;
      }),
    );
  }
}
