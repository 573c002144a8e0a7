/**
 * Receipts and results as they arrive from an agent, one frame's worth at a time: step results
 * acked at once, the rest handed to the forwarder, and what a full backlog refused answered with
 * `result_retry` so the agent comes back when the queue can take it.
 */
import type { Logger } from '../shared/logger.js';
import type { ResultsItem } from '../shared/protocol.js';
import type { OutputPublisher } from '../store/output/output-publisher.js';
import type { AgentConnection } from './agent-connection.js';
import { type GatewayEvents, safeEmit } from './gateway-events.js';
import type { ResultForwarder } from './result-forwarder.js';
import { RefusalLog, refusedResultIds, retryAfterMs } from './result-retry.js';

export interface ResultIntakeDeps {
  forwarder: ResultForwarder;
  output: OutputPublisher;
  events: GatewayEvents;
  logger: Logger;
}

export class ResultIntake {
  private readonly refusals: RefusalLog;

  constructor(private readonly d: ResultIntakeDeps) {
    this.refusals = new RefusalLog(d.logger);
  }

  /** Receipts and results, one frame's worth, read now. */
  take(conn: AgentConnection, items: readonly ResultsItem[]): void {
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
    safeEmit(this.d.events, this.d.logger, 'results:refused', {
      count: ids.length,
      receipts,
      retry_after_ms: retryAfter,
    });
    this.refusals.refused(ids.length, receipts, retryAfter);
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
