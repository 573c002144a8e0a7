/**
 * What an agent may report on: receipts, results and live output only for the instructions and
 * executions issued to it. Instruction ids carry a tag binding them to their agent
 * (shared/identity/instruction-tag.ts), checked here statelessly before anything reaches Redis;
 * output must also be live (a `run` carrying the execution went out on this socket, or the agent
 * lists its instruction as running) and within the per-agent output byte rate. Everything refused
 * is counted by reason (`agent:dropped`, fluke_gateway_agent_refusals_total) and logged at warn,
 * at most one line per agent per window.
 */
import {
  executionBelongsTo,
  executionOf,
  instructionBelongsTo,
  instructionOfExecution,
} from '../shared/identity/instruction-tag.js';
import type { Logger } from '../shared/logger.js';
import type { OutputMessage, ResultsItem } from '../shared/protocol.js';
import type { AgentConnection } from './agent-connection.js';
import { type GatewayEvents, safeEmit } from './gateway-events.js';

export type DropReason = 'foreign_instruction' | 'output_not_live' | 'output_rate';

/** Live executions remembered per socket; beyond this the oldest are forgotten. */
export const MAX_LIVE_EXECUTIONS = 1024;
/** At most one warn line per agent per this window; the next line says how many were dropped. */
export const DROP_LOG_WINDOW_MS = 10_000;
/** Agents whose log window is remembered; a larger map is pruned of windows that ended. */
const MAX_LOG_WINDOWS = 1000;

export interface OutputRate {
  /** Sustained output bytes per second per agent connection. */
  bytesPerSecond: number;
  /** Bytes an agent may send at once above the rate (the bucket's size). */
  burstBytes: number;
}

export interface ResultGuardDeps {
  /** Null until the gateway has loaded it (no socket is open before that): nothing passes. */
  identityKey: () => Buffer | null;
  outputRate: OutputRate;
  events: GatewayEvents;
  logger: Logger;
  now?: () => number;
}

const EXECUTION_ID = /"execution_id":"([^"\\]{1,128})"/g;

export class ResultGuard {
  private readonly windows = new Map<string, { until: number; dropped: number }>();
  private readonly now: () => number;

  constructor(private readonly d: ResultGuardDeps) {
    this.now = d.now ?? Date.now;
  }

  /**
   * The items issued to this agent, in order. The others are dropped; those waiting for an ack
   * are acked, so an agent that is confused rather than hostile does not re-send them forever.
   */
  results(conn: AgentConnection, items: readonly ResultsItem[]): readonly ResultsItem[] {
    let kept: ResultsItem[] | null = null;
    const acks: string[] = [];
    for (let i = 0; i < items.length; i++) {
      const m = items[i] as ResultsItem;
      if (this.issued(conn, m)) {
        if (m.type === 'task_result') forgetLive(conn, m.execution_id);
        kept?.push(m);
        continue;
      }
      kept ??= items.slice(0, i);
      if (m.type !== 'instruction_receipt') acks.push(m.result_id);
    }
    if (kept === null) return items;
    conn.ack(acks);
    this.dropped(conn, 'foreign_instruction', items.length - kept.length);
    return kept;
  }

  private issued(conn: AgentConnection, m: ResultsItem): boolean {
    const id = m.instruction_id;
    // The results of one instruction arrive together (a receipt, then one per task): its tag is
    // checked once per socket, not once per message. The agent of a socket never changes.
    if (conn.verifiedInstruction !== id) {
      const key = this.d.identityKey();
      if (!key || !instructionBelongsTo(key, conn.agent, id)) return false;
      conn.verifiedInstruction = id;
    }
    return m.type === 'instruction_receipt' || executionOf(id, m.execution_id);
  }

  /** Whether this output line may be published. */
  output(conn: AgentConnection, msg: OutputMessage): boolean {
    if (!this.live(conn, msg.execution_id)) {
      this.dropped(conn, 'output_not_live', 1);
      return false;
    }
    if (!takeTokens(conn, Buffer.byteLength(msg.line, 'utf8'), this.d.outputRate, this.now())) {
      this.dropped(conn, 'output_rate', 1);
      return false;
    }
    return true;
  }

  private live(conn: AgentConnection, executionId: string): boolean {
    // Only runs issued to this agent are remembered: no tag check needed for them.
    if (conn.liveExecutions?.has(executionId)) return true;
    const instruction = instructionOfExecution(executionId);
    if (instruction === null || !conn.entry?.running.includes(instruction)) return false;
    const key = this.d.identityKey();
    return key !== null && executionBelongsTo(key, conn.agent, executionId);
  }

  /** A `run` went out on this socket: its executions may stream output here. */
  delivered(conn: AgentConnection, runJson: string): void {
    for (const match of runJson.matchAll(EXECUTION_ID)) rememberLive(conn, match[1] as string);
  }

  private dropped(conn: AgentConnection, reason: DropReason, count: number): void {
    safeEmit(this.d.events, this.d.logger, 'agent:dropped', { agent: conn.agent, reason, count });
    const now = this.now();
    const w = this.windows.get(conn.agent);
    if (w && now < w.until) {
      w.dropped += count;
      return;
    }
    const before = w?.dropped ?? 0;
    if (this.windows.size >= MAX_LOG_WINDOWS) this.prune(now);
    this.windows.set(conn.agent, { until: now + DROP_LOG_WINDOW_MS, dropped: 0 });
    this.d.logger.warn(
      { agent: conn.agent, remote: conn.remote, reason, count, dropped_since_last_line: before },
      'dropped agent messages not issued to it',
    );
  }

  private prune(now: number): void {
    for (const [agent, w] of this.windows) if (now >= w.until) this.windows.delete(agent);
  }
}

function rememberLive(conn: AgentConnection, executionId: string): void {
  conn.liveExecutions ??= new Set();
  const live = conn.liveExecutions;
  if (live.has(executionId)) return;
  if (live.size >= MAX_LIVE_EXECUTIONS) {
    const oldest = live.values().next().value;
    if (oldest !== undefined) live.delete(oldest);
  }
  live.add(executionId);
}

function forgetLive(conn: AgentConnection, executionId: string): void {
  const live = conn.liveExecutions;
  if (!live?.delete(executionId)) return;
  if (live.size === 0) conn.liveExecutions = null;
}

/** Token bucket per connection: full at first, refilled at the rate, capped at the burst. */
function takeTokens(conn: AgentConnection, bytes: number, rate: OutputRate, now: number): boolean {
  const last = conn.outputAt;
  const tokens =
    last === 0
      ? rate.burstBytes
      : Math.min(rate.burstBytes, conn.outputTokens + ((now - last) * rate.bytesPerSecond) / 1000);
  conn.outputAt = now;
  if (tokens < bytes) {
    conn.outputTokens = tokens;
    return false;
  }
  conn.outputTokens = tokens - bytes;
  return true;
}
