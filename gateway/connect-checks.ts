/**
 * Connect checks, coalesced. Every agent that registers (or whose registry entry is rebuilt) must
 * be reconciled at once; one BullMQ job per agent made a reconnect storm cost one job add, one
 * job, one desired-state read and one deadline job per agent. Instead the agents that register
 * within `windowMs` of each other on this gateway leave together as one `agents` job (trigger
 * `connect`, at most `maxAgents` per job), as the drift cycle's chunks do: the reconciler reads the
 * desired state once per job, plans each agent as the single-agent handler does and covers every
 * instruction with one `deadlines` job. A name asked for twice within a window is checked once.
 *
 * `request` resolves once the job holding the agent is enqueued (true) or could not be (false: the
 * caller makes that agent reconnect, so its check is not lost). Nothing here reads a clock but the
 * timer; the I/O is the queue port.
 */
import { connectChecksJob } from '../shared/jobs/builders.js';
import { AGENTS_PER_JOB } from '../shared/jobs/payloads.js';
import type { Logger } from '../shared/logger.js';
import type { JobQueue } from './result-forwarder.js';

/** How long a connect check waits for others to leave with it (GatewayLimits.connectCheckWindowMs). */
export const CONNECT_CHECK_WINDOW_MS = 200;

export interface ConnectChecksOptions {
  queue: JobQueue;
  windowMs: number;
  /** Agents per job; the `agents` job schema allows AGENTS_PER_JOB. */
  maxAgents?: number;
  logger: Logger;
}

interface Batch {
  agents: Set<string>;
  done: Promise<boolean>;
  resolve: (ok: boolean) => void;
}

function newBatch(): Batch {
  let resolve: (ok: boolean) => void = () => {};
  const done = new Promise<boolean>((r) => {
    resolve = r;
  });
  return { agents: new Set(), done, resolve };
}

export class ConnectChecks {
  private batch: Batch = newBatch();
  private timer: NodeJS.Timeout | undefined;
  private readonly maxAgents: number;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: ConnectChecksOptions) {
    this.maxAgents = Math.min(Math.max(1, o.maxAgents ?? AGENTS_PER_JOB), AGENTS_PER_JOB);
  }

  /** Checks `agent` with the next job; true once that job is enqueued. */
  request(agent: string): Promise<boolean> {
    const batch = this.batch;
    batch.agents.add(agent);
    if (batch.agents.size >= this.maxAgents) this.flushNow();
    else this.timer ??= setTimeout(() => this.flushNow(), this.o.windowMs);
    return batch.done;
  }

  /** Sends what waits now (drain, a full batch); resolves when every job sent so far is enqueued. */
  flushNow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    if (batch.agents.size > 0) {
      this.batch = newBatch();
      const sending = this.send(batch);
      this.inFlight.add(sending);
      void sending.finally(() => this.inFlight.delete(sending));
    }
    return Promise.all([...this.inFlight]).then(() => {});
  }

  private async send(batch: Batch): Promise<void> {
    const agents = [...batch.agents];
    const job = connectChecksJob(agents);
    try {
      await this.o.queue.add(job.name, job.data, job.opts);
      batch.resolve(true);
    } catch (err) {
      this.o.logger.error(
        { err: (err as Error).message, agents: agents.length },
        'cannot enqueue connect checks',
      );
      batch.resolve(false);
    }
  }
}
