/**
 * One simulated agent of bench/recovery.ts that survives what the real agent survives: it keeps its
 * socket up (the agent's own backoff with full jitter, silence detection and reconnect delays), keeps
 * the credential a gateway minted for it and presents it on every reconnect, keeps every result in
 * the agent's Outbox until acknowledged and re-sends them all on registration, and admits runs with
 * the agent's own `admit` over its RecentIds (an instruction id is never run twice). Steps are
 * instant; a `drift` fraction of (agent, task) pairs, chosen by a stable hash per phase, come back
 * drifted-then-applied. Unlike reconcile-sims.ts it counts what the recovery table needs: when it
 * was last disconnected and registered, and every execution per (task, phase).
 */
import pino from 'pino';
import WebSocket from 'ws';
import { admit, receiptOf } from '../agent/admission.js';
import { RESEND_AFTER_MS } from '../agent/agent.js';
import { BATCH_DEFAULTS } from '../agent/connection.js';
import { keepHeartbeat, reconnectDelay } from '../agent/connection-timing.js';
import { FrameBatcher } from '../agent/frame-batcher.js';
import { Outbox, retryDelayMs } from '../agent/outbox.js';
import { RecentIds } from '../agent/recent-ids.js';
import { readUpgradeRefusal } from '../agent/upgrade-refusal.js';
import { AGENT_FEATURES, type AgentResult, PROTOCOL_VERSION, type RunMessage } from '../shared/protocol.js';
import { answerRun } from './recovery-answer.js';

const quiet = pino({ level: 'silent' });

/** What every agent of one simulator process adds to. */
export interface SimCounters {
  results: number;
  acked: number;
  /** Results re-sent on a registration (they were not acknowledged on the previous socket). */
  resentOnRegister: number;
  /** Runs refused as a duplicate instruction id (a re-delivery the agent's RecentIds caught). */
  duplicates: number;
  /** Runs refused because the task was still executing. */
  busy: number;
  /** An instruction id executed a second time (counted apart from the agent's own RecentIds guard). */
  doubleApplies: number;
  /**
   * A drifted (task, phase) pair applied again by another instruction in the same phase. The
   * simulated host stays drifted for the whole phase, so this counts every second apply-mode
   * instruction for work already done; a real host, fixed by the first apply, would only re-check.
   */
  reApplies: number;
  /** A second execution of a (task, phase) that applied nothing (a repeated check: harmless). */
  repeatChecks: number;
  reconnects: number;
  /** Upgrades refused (401/403/429) or `refused` registrations. */
  refusals: number;
  credentialRejected: number;
}

export interface Phase {
  name: string;
  drift: number;
  /** Epoch ms the phase began (the fault or the trigger). */
  since: number;
}

export interface SimAgentOptions {
  name: string;
  index: number;
  urls: string[];
  token: string;
  counters: SimCounters;
  phase: () => Phase;
  nextId: () => string;
}

export class SimAgent {
  readonly outbox = new Outbox(quiet, 10_000);
  private readonly seen = new RecentIds(10_000);
  /** Every instruction id this agent executed (unbounded: a bench runs minutes). */
  private readonly executedIds = new Set<string>();
  private ws: WebSocket | null = null;
  private batcher: FrameBatcher | null = null;
  private credential: string | null = null;
  private attempt = 0;
  private urlIndex: number;
  private lastHeard = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  registered = false;
  registeredAt = 0;
  closedAt = 0;
  lastRunAt = 0;
  /** task → execution id of the last execution (what the task status must end up naming). */
  readonly latest = new Map<string, string>();
  /** task → executions and applies in the current phase (`perPhaseName`). */
  private readonly perPhase = new Map<string, { runs: number; applies: number }>();
  private perPhaseName = '';

  constructor(private readonly o: SimAgentOptions) {
    this.urlIndex = o.index % o.urls.length;
  }

  get name(): string {
    return this.o.name;
  }

  /** Resolves on the first registration (or rejects on the first failure to connect). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.connect(resolve, reject));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.ws?.terminate();
  }

  private connect(onRegistered?: () => void, onFail?: (err: Error) => void): void {
    const url = this.o.urls[this.urlIndex] ?? '';
    let refused = false;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.credential ?? this.o.token}` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      // Remote hosts' CPU is not the control plane's (as reconcile-sims.ts).
      generateMask: (mask: Buffer) => mask.fill(0),
      skipUTF8Validation: true,
    });
    this.ws = ws;
    ws.on('unexpected-response', (_req, res) =>
      readUpgradeRefusal(res, (status, code) => {
        if (this.credential !== null && status === 401 && code === 'credential_rejected') {
          this.o.counters.credentialRejected++;
          this.credential = null;
        } else {
          this.o.counters.refusals++;
          if (status === 401 || status === 403) refused = true;
        }
        ws.terminate();
      }),
    );
    ws.on('error', (err) => {
      if (onFail && !this.registered) onFail(err);
      onFail = undefined;
    });
    ws.on('open', () => {
      this.lastHeard = Date.now();
      ws.send(JSON.stringify(this.registerMessage()));
    });
    ws.on('pong', () => {
      this.lastHeard = Date.now();
    });
    ws.on('message', (data) => {
      this.lastHeard = Date.now();
      const msg = JSON.parse(data.toString()) as Record<string, unknown> & { type: string };
      if (msg.type === 'registered') {
        onFail = undefined;
        this.onRegistered(ws, msg);
        onRegistered?.();
      } else if (msg.type === 'refused') {
        this.o.counters.refusals++;
        refused = true;
        ws.close(1000, 'refused');
      } else this.onRegisteredMessage(msg);
    });
    ws.on('close', (code) => this.onClose(ws, code, refused));
  }

  private registerMessage(): Record<string, unknown> {
    return {
      type: 'register',
      v: PROTOCOL_VERSION,
      name: this.o.name,
      labels: { role: 'bench', zone: String(this.o.index % 4) },
      agent_version: 'bench',
      executors: ['shell'],
      running: [],
      features: [...AGENT_FEATURES],
    };
  }

  private onRegistered(ws: WebSocket, msg: Record<string, unknown>): void {
    if (typeof msg.credential === 'string') this.credential = msg.credential;
    this.registered = true;
    this.registeredAt = Date.now();
    this.attempt = 0;
    this.batcher = new FrameBatcher({ ...BATCH_DEFAULTS, write: (frame) => ws.send(frame) });
    clearInterval(this.heartbeat);
    this.heartbeat = keepHeartbeat(ws, Number(msg.heartbeat_interval_ms ?? 10_000), {
      lastHeard: () => this.lastHeard,
      buildHeartbeat: () => ({ type: 'heartbeat', running: [] }),
      log: quiet,
    });
    // As ResultDelivery.resendAll: everything unacknowledged goes again, oldest first.
    const pending = this.outbox.pending();
    this.o.counters.resentOnRegister += pending.length;
    for (const r of pending) this.batcher.add(JSON.stringify(r));
    this.batcher.flush();
    this.outbox.markAllSent(Date.now());
  }

  private onRegisteredMessage(msg: Record<string, unknown> & { type: string }): void {
    const ids = Array.isArray(msg.result_ids) ? (msg.result_ids as string[]) : [];
    if (msg.type === 'run') this.onRun(msg as unknown as RunMessage);
    else if (msg.type === 'result_ack') this.o.counters.acked += this.outbox.ack(ids);
    else if (msg.type === 'result_retry') {
      const delay = retryDelayMs(Number(msg.retry_after_ms ?? 0), RESEND_AFTER_MS);
      this.outbox.retryAt(ids, Date.now() + delay);
      setTimeout(() => this.resendDue(), delay).unref();
    }
  }

  /** Overdue (no ack in 30 s) or retry-due results go again, as ResultDelivery does. */
  resendDue(): void {
    if (!this.registered || !this.batcher) return;
    const due = this.outbox.takeOverdue(Date.now(), RESEND_AFTER_MS);
    for (const r of due) this.batcher.add(JSON.stringify(r));
    this.batcher.flush();
  }

  private onRun(run: RunMessage): void {
    const decision = admit(run, {
      accepting: true,
      seen: (id) => this.seen.has(id),
      busyWith: () => undefined,
    });
    const batcher = this.batcher;
    if (!batcher) return;
    batcher.add(JSON.stringify(receiptOf(run.instruction_id, decision)));
    if (!decision.accepted) {
      if (decision.code === 'duplicate') this.o.counters.duplicates++;
      else if (decision.code === 'busy') this.o.counters.busy++;
      batcher.flush();
      return;
    }
    this.seen.add(run.instruction_id);
    if (this.executedIds.has(run.instruction_id)) this.o.counters.doubleApplies++;
    this.executedIds.add(run.instruction_id);
    this.lastRunAt = Date.now();
    const phase = this.o.phase();
    const keep = (result: AgentResult) => {
      this.outbox.add(result);
      batcher.add(JSON.stringify(result));
      this.o.counters.results++;
    };
    const executed = answerRun(run, { agent: this.o.name, phase, nextId: this.o.nextId, keep });
    if (this.perPhaseName !== phase.name) {
      this.perPhase.clear();
      this.perPhaseName = phase.name;
    }
    for (const { task, executionId, applied } of executed) {
      this.latest.set(task, executionId);
      const key = task;
      const seen = this.perPhase.get(key) ?? { runs: 0, applies: 0 };
      if (seen.runs > 0 && applied && seen.applies > 0) this.o.counters.reApplies++;
      else if (seen.runs > 0) this.o.counters.repeatChecks++;
      seen.runs++;
      if (applied) seen.applies++;
      this.perPhase.set(key, seen);
    }
    batcher.flush();
  }

  private onClose(ws: WebSocket, code: number, refused: boolean): void {
    if (ws !== this.ws) return;
    clearInterval(this.heartbeat);
    this.batcher?.clear();
    this.batcher = null;
    this.ws = null;
    if (this.registered) this.closedAt = Date.now();
    const wasRegistered = this.registered;
    this.registered = false;
    if (this.stopped) return;
    if (wasRegistered) this.attempt = 0;
    const next = reconnectDelay({}, { refused, code, attempt: this.attempt });
    this.attempt = next.attempt;
    // A balancer sends the next connect to a gateway that is up; without one, try the next address.
    this.urlIndex = (this.urlIndex + 1) % this.o.urls.length;
    this.o.counters.reconnects++;
    this.reconnectTimer = setTimeout(() => this.connect(), next.delayMs);
  }
}
