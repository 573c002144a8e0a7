/**
 * What arrives in this gateway's inbox stream: instructions to hand to a held agent, and kicks for
 * sessions replaced elsewhere. Anything that cannot be delivered becomes an `undeliverable` job on
 * the results queue, so the reconciler hears about it instead of waiting for a deadline.
 */

import { errorMessage } from '../shared/errors.js';
import { decodeInboxRecord, type InboxRecord, type InstructionEnvelope } from '../shared/inbox-record.js';
import { undeliverableJob } from '../shared/jobs/builders.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode } from '../shared/protocol.js';
import { assertNever } from '../shared/types.js';
import type { AgentConnection } from './agent-connection.js';
import { type GatewayEvents, safeEmit } from './gateway-events.js';
import type { JobQueue } from './result-forwarder.js';
import type { SessionTable } from './session-table.js';

export interface InstructionDeliveryDeps {
  gatewayId: string;
  table: SessionTable;
  results: JobQueue;
  events: GatewayEvents;
  logger: Logger;
  draining(): boolean;
  track<T>(promise: Promise<T>): Promise<T>;
  /** A `run` went out on this socket (its executions become live there). */
  sentRun?(conn: AgentConnection, runJson: string): void;
}

export class InstructionDelivery {
  constructor(private readonly d: InstructionDeliveryDeps) {}

  /** One inbox stream record, as the publisher encoded it. */
  inboxRecord(text: string): void {
    const msg: InboxRecord | null = decodeInboxRecord(text);
    if (!msg) {
      this.d.logger.warn({ bytes: text.length }, 'ignoring malformed gateway inbox record');
      return;
    }
    switch (msg.kind) {
      case 'instruction':
        this.deliver(msg);
        break;
      case 'kick': {
        const conn = this.d.table.get(msg.agent);
        if (conn && conn.sessionId === msg.session_id) {
          conn.end(CloseCode.replaced, `replaced by a newer session on gateway ${msg.by_gateway}`);
        }
        break;
      }
      default:
        assertNever(msg, 'gateway inbox record');
    }
  }

  private deliver(env: InstructionEnvelope): void {
    const id = env.instruction_id;
    const conn = this.d.table.get(env.agent);
    let reason: string | null = null;
    if (this.d.draining()) reason = 'gateway shutting down';
    else if (conn?.phase !== 'registered') reason = `agent not connected to gateway ${this.d.gatewayId}`;
    else if (env.session_id !== null && env.session_id !== conn.sessionId) reason = 'session replaced';
    else if (!conn.sendText(env.message_json, env.type))
      reason = 'agent disconnected: too slow to read (backpressure limit)';
    if (reason === null) {
      if (env.type === 'run' && conn) this.d.sentRun?.(conn, env.message_json);
      safeEmit(this.d.events, this.d.logger, 'instruction:delivered', {
        agent: env.agent,
        instruction_id: id,
      });
      return;
    }
    void this.d.track(this.undeliverable(env.agent, id, reason));
  }

  private async undeliverable(agent: string, instructionId: string, reason: string): Promise<void> {
    this.d.logger.warn({ agent, instruction: instructionId, reason }, 'instruction undeliverable');
    safeEmit(this.d.events, this.d.logger, 'instruction:undeliverable', {
      agent,
      instruction_id: instructionId,
      reason,
    });
    const job = undeliverableJob({ kind: 'undeliverable', agent, instruction_id: instructionId, reason });
    try {
      await this.d.results.add(job.name, job.data, job.opts);
    } catch (err) {
      // Last resort: the reconciler's deadline job turns the silence into a timeout.
      this.d.logger.error(
        { err: errorMessage(err), instruction: instructionId },
        'cannot report undeliverable instruction',
      );
    }
  }
}
