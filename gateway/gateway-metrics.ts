/**
 * Per-process gateway metrics (prom-client, the gateway's own registry): sockets and agents held,
 * registrations and refusals, WebSocket messages by type, instruction latency. Counting a message
 * is an array increment on the socket path; prom-client sees the totals only when scraped.
 * Everything else arrives through the gateway's event emitter, so the socket code stays unaware.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type {
  AgentMessage,
  GatewayMessage,
  RegisterRefusalCode,
  ResultsMessage,
} from '../shared/protocol.js';
import { CloseCode } from '../shared/protocol.js';
import { RATE_LIMITED_PREFIX, TRY_AGAIN_LATER, type UpgradeRefusal } from './agent-admission.js';
import type { GatewayEvents } from './gateway-events.js';

/** A message as counted: a `results` frame is counted as the receipts and results it carries. */
export type CountedMessage = Exclude<AgentMessage, ResultsMessage>;

/** What the socket path calls: each a constant-time increment. */
export interface GatewayMetricsPort {
  /** A message from an agent, parsed (null: a frame that failed the schema). */
  received(message: CountedMessage | null): void;
  sent(type: GatewayMessage['type']): void;
  /** An upgrade refused: a missing or wrong agent token, or an address throttled for too many of them. */
  upgradeRefused(reason: UpgradeRefusal): void;
}

export const RECEIVED_TYPES = [
  'register',
  'heartbeat',
  'instruction_receipt',
  'check_result',
  'step_result',
  'task_result',
  'output',
  'invalid',
] as const;
export const SENT_TYPES = ['registered', 'refused', 'run', 'result_ack', 'result_retry', 'cancel'] as const;
export const REFUSAL_REASONS = [
  'bad_token',
  'throttled',
  'rate_limited',
  'labels',
  'protocol_version',
  'scope',
  'name_held',
  'name_mismatch',
  'legacy_refused',
  'credential_rejected',
  'bad_message',
  'wrong_phase',
  'too_large',
  'register_timeout',
  'foreign_instruction',
  'output_not_live',
  'output_rate',
  'other',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A bounded reason class for a refusal the gateway emitted (the text itself is unbounded). */
export function refusalReason(code: number, reason: string, refusal?: RegisterRefusalCode): RefusalReason {
  switch (code) {
    case CloseCode.refused:
      if (refusal === 'name_held' || refusal === 'name_mismatch' || refusal === 'legacy_refused')
        return refusal;
      if (reason.startsWith('protocol version')) return 'protocol_version';
      // agent-rules.ts labelsProblem: "too many labels…", "label key…", "label \"k\" has…", "labels too large…".
      if (reason.startsWith('label') || reason.startsWith('too many labels')) return 'labels';
      return 'scope';
    case TRY_AGAIN_LATER:
      return reason.startsWith(RATE_LIMITED_PREFIX) ? 'rate_limited' : 'other';
    case CloseCode.badMessage:
      return 'bad_message';
    case CloseCode.wrongPhase:
      return 'wrong_phase';
    case CloseCode.tooLarge:
      return 'too_large';
    case CloseCode.slow:
      return reason === 'no register message' ? 'register_timeout' : 'other';
    default:
      return 'other';
  }
}

const RESULT_TYPES = new Set<string>(['check_result', 'step_result', 'task_result']);
/** Delivered instructions waiting for their first result; beyond this the oldest are forgotten. */
const MAX_IN_FLIGHT = 100_000;
const FORGET_AFTER_MS = 6 * 3600_000;

export interface WatchedGateway {
  id: string;
  events: GatewayEvents;
  stats(): { sockets: number; agents: number };
}

export class GatewayMetrics implements GatewayMetricsPort {
  private readonly receivedCounts = new Float64Array(RECEIVED_TYPES.length);
  private readonly sentCounts = new Float64Array(SENT_TYPES.length);
  private readonly refusalCounts = new Float64Array(REFUSAL_REASONS.length);
  private registrationCount = 0;
  private readonly deliveredAt = new Map<string, number>();
  private readonly latency: Histogram;
  private readonly instructions: Counter<'result'>;
  private readonly forwarded: Counter<'result'>;
  private readonly refusedResults: Counter;
  private readonly unreplicated: Counter;
  private gateway: WatchedGateway | null = null;

  constructor(registry: Registry) {
    const self = this;
    const registers = [registry];
    const totals = <T extends string>(
      name: string,
      help: string,
      label: T,
      names: readonly string[],
      counts: Float64Array,
    ) =>
      new Counter<T>({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          names.forEach((n, i) => {
            this.inc({ [label]: n } as Partial<Record<T, string>>, counts[i] ?? 0);
          });
        },
      });
    totals(
      'fluke_gateway_messages_received_total',
      'WebSocket messages received from agents, by type',
      'type',
      RECEIVED_TYPES,
      this.receivedCounts,
    );
    totals(
      'fluke_gateway_messages_sent_total',
      'WebSocket messages sent to agents, by type',
      'type',
      SENT_TYPES,
      this.sentCounts,
    );
    totals(
      'fluke_gateway_agent_refusals_total',
      'Agent sockets refused (bad token, registration refused) or closed for a protocol violation, and agent messages dropped (not issued to the agent, output not live or over its byte rate), by reason',
      'reason',
      REFUSAL_REASONS,
      this.refusalCounts,
    );
    new Counter({
      name: 'fluke_gateway_registrations_total',
      help: 'Agent registrations accepted by this gateway',
      registers,
      collect() {
        this.reset();
        this.inc(self.registrationCount);
      },
    });
    const held = (name: string, help: string, pick: (s: { sockets: number; agents: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['gateway'],
        registers,
        collect() {
          this.reset();
          if (self.gateway) this.set({ gateway: self.gateway.id }, pick(self.gateway.stats()));
        },
      });
    held('fluke_gateway_connected_agents', 'Registered agents connected to this gateway', (s) => s.agents);
    held('fluke_gateway_sockets', 'Open agent sockets on this gateway, registered or not', (s) => s.sockets);
    this.latency = new Histogram({
      name: 'fluke_instruction_latency_seconds',
      help: 'Instruction handed to the agent until its first check or task result arrives',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.instructions = new Counter({
      name: 'fluke_gateway_instructions_total',
      help: 'Instructions from reconcilers, by result (delivered to the agent socket, or undeliverable)',
      labelNames: ['result'],
      registers,
    });
    this.forwarded = new Counter({
      name: 'fluke_gateway_results_forwarded_total',
      help: 'Agent results put on the results queue (ok) or left for the agent to re-send (failed)',
      labelNames: ['result'],
      registers,
    });
    this.unreplicated = new Counter({
      name: 'fluke_gateway_results_unreplicated_total',
      help: 'Agent results enqueued but not acknowledged because no replica confirmed them within replica_ack_timeout (the agent re-sends them)',
      registers,
    });
    this.refusedResults = new Counter({
      name: 'fluke_gateway_results_refused_total',
      help: 'Agent results refused because the result backlog was full (the agent was told to re-send them: result_retry)',
      registers,
    });
  }

  received(message: CountedMessage | null): void {
    const type = message?.type ?? 'invalid';
    const i = RECEIVED_TYPES.indexOf(type);
    if (i >= 0) this.receivedCounts[i] = (this.receivedCounts[i] ?? 0) + 1;
    if (!message) return;
    if (RESULT_TYPES.has(message.type) && 'instruction_id' in message) {
      const at = this.deliveredAt.get(message.instruction_id);
      if (at === undefined) return;
      this.deliveredAt.delete(message.instruction_id);
      this.latency.observe((performance.now() - at) / 1000);
    } else if (message.type === 'instruction_receipt' && !message.accepted) {
      this.deliveredAt.delete(message.instruction_id);
    }
  }

  sent(type: GatewayMessage['type']): void {
    const i = SENT_TYPES.indexOf(type);
    if (i >= 0) this.sentCounts[i] = (this.sentCounts[i] ?? 0) + 1;
  }

  upgradeRefused(reason: UpgradeRefusal): void {
    // A missing token counts as a bad one; a rejected credential keeps its own reason.
    this.refused(reason === 'missing_token' ? 'bad_token' : reason);
  }

  private refused(reason: RefusalReason, count = 1): void {
    const i = REFUSAL_REASONS.indexOf(reason);
    this.refusalCounts[i] = (this.refusalCounts[i] ?? 0) + count;
  }

  /** Follows one gateway: its events and, at scrape time, its socket counts. */
  watch(gateway: WatchedGateway): this {
    this.gateway = gateway;
    const { events } = gateway;
    events.on('agent:registered', () => {
      this.registrationCount++;
    });
    events.on('agent:refused', (e) => this.refused(refusalReason(e.code, e.reason, e.refusal)));
    events.on('agent:dropped', (e) => this.refused(e.reason, e.count));
    events.on('instruction:delivered', (e) => {
      this.instructions.inc({ result: 'delivered' });
      this.delivered(e.instruction_id, performance.now());
    });
    events.on('instruction:undeliverable', () => this.instructions.inc({ result: 'undeliverable' }));
    events.on('results:enqueued', (e) => this.forwarded.inc({ result: 'ok' }, e.count));
    events.on('results:failed', (e) => this.forwarded.inc({ result: 'failed' }, e.count));
    events.on('results:refused', (e) => this.refusedResults.inc(e.count));
    events.on('results:unreplicated', (e) => this.unreplicated.inc(e.count));
    return this;
  }

  private delivered(instructionId: string, now: number): void {
    // Insertion order is time order: forget what never got an answer (agent gone, result lost).
    for (const [id, at] of this.deliveredAt) {
      if (this.deliveredAt.size < MAX_IN_FLIGHT && now - at < FORGET_AFTER_MS) break;
      this.deliveredAt.delete(id);
    }
    this.deliveredAt.set(instructionId, now);
  }
}
