/**
 * The agent protocol as the gateway runs it: phases, registration, heartbeats, results, output,
 * instruction delivery, replacement and silence. No uWS or Redis types leak in: sockets arrive as
 * AgentConnection, storage goes through the Registry port and the queues through JobQueue.
 */
import { randomUUID } from 'node:crypto';
import { checkScope } from '../shared/auth.js';
import { encodeChannelMessage } from '../shared/inbox-record.js';
import { connectReconcileJob } from '../shared/jobs/builders.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import {
  type AgentMessage,
  CloseCode,
  PROTOCOL_VERSION,
  parseAgentMessage,
  type RegisterMessage,
  type ResultsItem,
} from '../shared/protocol.js';
import { assertNever } from '../shared/types.js';
import { sendToGateway } from '../store/inbox/gateway-inbox.js';
import type { OutputPublisher } from '../store/output/output-publisher.js';
import type { RedisClient } from '../store/redis/client.js';
import type { Registry } from '../store/registry/registry.js';
import type { AgentConnection } from './agent-connection.js';
import type { Frame } from './agent-endpoint.js';
import { type GatewayEventMap, type GatewayEvents, safeEmit } from './gateway-events.js';
import type { GatewayMetricsPort } from './gateway-metrics.js';
import type { JobQueue, ResultForwarder } from './result-forwarder.js';
import { RefusalLog, refusedResultIds, retryAfterMs } from './result-retry.js';
import type { SessionTable } from './session-table.js';

/** Not in CloseCode: registration could not be stored; the agent retries with backoff. */
export const TRY_AGAIN_LATER = 1013;

/** Heartbeats waiting for the registry leave at once when this many are waiting. */
const HEARTBEAT_FLUSH_COUNT = 500;
/**
 * Otherwise they wait at most this long (capped at a tenth of the heartbeat interval): one
 * pipeline per heartbeat cost ~58 µs of CPU each.
 */
const HEARTBEAT_FLUSH_MS = 200;

export interface SessionControllerDeps {
  gatewayId: string;
  heartbeatIntervalMs: number;
  /** Messages an agent may send while its registration is being written, before we give up on it. */
  maxBacklog: number;
  registry: Registry;
  table: SessionTable;
  forwarder: ResultForwarder;
  output: OutputPublisher;
  queues: { results: JobQueue; reconcile: JobQueue };
  /** For kicks on other gateways' channels. */
  redis: RedisClient;
  keys: Keys;
  events: GatewayEvents;
  logger: Logger;
  /** Message counts and instruction latency (gateway/gateway-metrics.ts). */
  metrics?: Pick<GatewayMetricsPort, 'received'>;
}

export class SessionController {
  /** Registry writes in flight; drain waits for them so no entry outlives its socket. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly beats = new Set<AgentConnection>();
  private beatTimer: NodeJS.Timeout | null = null;
  private beatImmediate: NodeJS.Immediate | null = null;
  private readonly beatFlushMs: number;
  private registryDown = false;
  private readonly refusals: RefusalLog;
  draining = false;

  constructor(private readonly d: SessionControllerDeps) {
    this.beatFlushMs = Math.min(HEARTBEAT_FLUSH_MS, d.heartbeatIntervalMs / 10);
    this.refusals = new RefusalLog(d.logger);
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
    this.flushBeatsNow();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
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
      if (conn.phase === 'new') void this.track(this.register(conn, msg));
      else this.reject(conn, CloseCode.wrongPhase, 'already registered');
      return;
    }
    if (conn.phase !== 'registered') {
      this.reject(conn, CloseCode.wrongPhase, `expected register, got ${msg.type}`);
      return;
    }
    switch (msg.type) {
      case 'heartbeat':
        if (conn.entry) conn.entry.running = msg.running;
        this.heartbeat(conn);
        break;
      case 'instruction_receipt':
      case 'check_result':
      case 'step_result':
      case 'task_result':
        this.forward(conn, [msg]);
        break;
      case 'results':
        this.forward(conn, msg.messages);
        break;
      case 'output':
        this.d.output.push(conn.agent, msg);
        break;
      default:
        assertNever(msg, 'agent message');
    }
  }

  /** Receipts and results, one frame's worth, read now. */
  private forward(conn: AgentConnection, items: readonly ResultsItem[]): void {
    const messages = withoutStepResults(conn, items);
    // A full backlog (a burst, or Redis slow or down) takes no more: the rest is refused.
    const taken = this.d.forwarder.pushAll(conn, messages);
    for (let i = 0; i < taken; i++) {
      const m = messages[i]!;
      // The execution is over: its watchers get an end record behind its last output line.
      if (m.type === 'task_result') this.d.output.end(conn.agent, m);
    }
    if (taken < messages.length) this.refused(conn, messages, taken);
  }

  /**
   * No ack for the refused results: tell the agent when to send them again (not its 30 s
   * default), if it said it understands `result_retry`; an older agent re-sends after 30 s.
   */
  private refused(conn: AgentConnection, messages: readonly ResultsItem[], taken: number): void {
    const ids = refusedResultIds(messages, taken);
    const retryAfter = retryAfterMs(this.d.forwarder.failing);
    if (ids.length > 0 && conn.takesRetry)
      conn.send({ type: 'result_retry', result_ids: ids, retry_after_ms: retryAfter });
    const receipts = messages.length - taken - ids.length;
    this.emit('results:refused', { count: ids.length, receipts, retry_after_ms: retryAfter });
    this.refusals.refused(ids.length, receipts, retryAfter);
  }

  private reject(conn: AgentConnection, code: number, reason: string): void {
    conn.log().warn({ code, reason }, 'closing agent socket');
    this.emit('agent:refused', { agent: conn.entry?.name ?? null, code, reason });
    conn.end(code, reason);
  }

  private refuse(conn: AgentConnection, reason: string): void {
    conn.send({ type: 'refused', reason });
    this.reject(conn, CloseCode.refused, reason);
  }

  private async register(conn: AgentConnection, msg: RegisterMessage): Promise<void> {
    if (msg.v !== PROTOCOL_VERSION) {
      return this.refuse(
        conn,
        `protocol version ${msg.v} not supported (gateway speaks ${PROTOCOL_VERSION})`,
      );
    }
    const scope = checkScope(conn.grant, msg.name, msg.labels);
    if (!scope.ok) return this.refuse(conn, scope.reason);
    if (this.draining) return conn.end(CloseCode.goingAway, 'gateway shutting down, reconnect');

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
        await sendToGateway(
          this.d.redis,
          this.d.keys,
          previous.gateway_id,
          encodeChannelMessage({
            kind: 'kick',
            agent: msg.name,
            session_id: previous.session_id,
            by_gateway: this.d.gatewayId,
          }),
          // A gateway silent for 3 heartbeats is gone, and its sockets with it: no kick needed.
          Date.now() - 3 * this.d.heartbeatIntervalMs,
        );
      }
    } catch (err) {
      conn.log().error({ err: errMessage(err) }, 'registry write failed');
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
    this.emit('agent:registered', { agent: msg.name, session_id: conn.entry.session_id, replaced });
    const backlog = conn.backlog ?? [];
    conn.backlog = null;
    for (const text of backlog) if (conn.phase === 'registered') this.handle(conn, text);
    await this.enqueueReconcile(conn);
  }

  private async enqueueReconcile(conn: AgentConnection): Promise<void> {
    const job = connectReconcileJob(conn.agent);
    try {
      await this.d.queues.reconcile.add(job.name, job.data, job.opts);
    } catch (err) {
      // Without its connect reconcile the agent would wait a full drift interval; make it retry.
      conn.log().error({ err: errMessage(err) }, 'cannot enqueue connect reconcile');
      conn.end(TRY_AGAIN_LATER, 'cannot schedule reconcile, retry later');
    }
  }

  private heartbeat(conn: AgentConnection): void {
    const now = Date.now();
    conn.lastHeartbeat = now;
    if (conn.entry) conn.entry.last_seen = now;
    this.beats.add(conn);
    // Heartbeats share registry pipelines: they leave on a short timer, or at once in a crowd.
    if (this.beats.size >= HEARTBEAT_FLUSH_COUNT) {
      if (this.beatImmediate) return;
      if (this.beatTimer) clearTimeout(this.beatTimer);
      this.beatTimer = null;
      this.beatImmediate = setImmediate(() => this.flushBeatsNow());
    } else if (!this.beatTimer && !this.beatImmediate) {
      this.beatTimer = setTimeout(() => this.flushBeatsNow(), this.beatFlushMs);
      this.beatTimer.unref();
    }
  }

  /** Writes the waiting heartbeats now (tracked, so settled() waits for them). */
  private flushBeatsNow(): void {
    if (this.beatTimer) clearTimeout(this.beatTimer);
    if (this.beatImmediate) clearImmediate(this.beatImmediate);
    this.beatTimer = null;
    this.beatImmediate = null;
    if (this.beats.size === 0) return;
    void this.track(this.flushBeats());
  }

  private async flushBeats(): Promise<void> {
    // Closed sockets left the set in closed(); their entries are deregistered, never renewed.
    const conns = [...this.beats].filter((c) => c.phase === 'registered' && c.entry);
    this.beats.clear();
    if (conns.length === 0) return;
    try {
      const outcomes = await this.d.registry.heartbeat(conns.map((c) => c.entry!));
      if (this.registryDown) this.d.logger.info('registry reachable again');
      this.registryDown = false;
      outcomes.forEach((outcome, i) => {
        const conn = conns[i]!;
        if (outcome === 'replaced') {
          conn.end(CloseCode.replaced, 'replaced by a newer session of this agent');
        } else if (outcome === 'rebuilt') {
          // Redis lost the entry (flush, restart, lapse): it is back; reconcile as after a connect.
          conn.log().info('registry entry rebuilt');
          this.emit('registry:rebuilt', { agent: conn.agent });
          void this.track(this.enqueueReconcile(conn));
        }
      });
    } catch (err) {
      if (!this.registryDown)
        this.d.logger.error({ err: errMessage(err) }, 'heartbeat registry write failed');
      this.registryDown = true;
    }
  }

  closed(conn: AgentConnection, code: number, reason: string): void {
    const wasRegistered = conn.phase === 'registered';
    const cause = conn.closeCause ?? { code, reason };
    conn.detach();
    this.d.table.remove(conn);
    this.beats.delete(conn);
    const entry = conn.entry;
    if (wasRegistered && entry) {
      conn.log().info(cause, 'agent disconnected');
      void this.track(
        this.d.registry.deregister(entry.name, entry.session_id).catch((err: unknown) => {
          conn.log().warn({ err: errMessage(err) }, 'deregister failed; the entry will expire');
        }),
      );
    }
    this.emit('agent:closed', {
      agent: entry?.name ?? null,
      session_id: entry?.session_id ?? null,
      ...cause,
    });
  }

  /** Close what went silent: registered without a heartbeat for 3 intervals, or never registered. */
  sweep(now: number, registerTimeoutMs: number): void {
    const silentAfter = 3 * this.d.heartbeatIntervalMs;
    for (const conn of this.d.table.all()) {
      if (conn.phase === 'registered' && now - conn.lastHeartbeat > silentAfter) {
        conn.end(CloseCode.slow, `no heartbeat for ${now - conn.lastHeartbeat}ms`);
      } else if (conn.phase === 'new' && now - conn.openedAt > registerTimeoutMs) {
        this.reject(conn, CloseCode.slow, 'no register message');
      }
    }
  }
}

/**
 * Step results are progress only (the reconciler judges check and task results, and a task result
 * carries every step): acked at once and never queued. The other items, in order.
 */
function withoutStepResults(conn: AgentConnection, items: readonly ResultsItem[]): readonly ResultsItem[] {
  if (!items.some((m) => m.type === 'step_result')) return items;
  const steps: string[] = [];
  const rest: ResultsItem[] = [];
  for (const m of items) {
    if (m.type === 'step_result') steps.push(m.result_id);
    else rest.push(m);
  }
  conn.ack(steps);
  return rest;
}

/** Re-reads the phase after an await (TypeScript keeps the narrowing from before it). */
function isClosed(conn: AgentConnection): boolean {
  return conn.phase === 'closed';
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
