/** What the result handlers read and write, narrowed to the store methods they use. */
import type { Logger } from 'pino';
import type { Alert } from '../../../shared/alerts.js';
import type { ReconcileAgentJob } from '../../../shared/jobs/payloads.js';
import type { MetricsSink } from '../../../shared/metrics.js';
import type { Labels } from '../../../shared/types.js';
import type { EventStore } from '../../../store/events/event-store.js';
import type { InstructionStore } from '../../../store/instructions/instruction-store.js';
import type { RunStore } from '../../../store/runs/run-store.js';
import type { StatusStore } from '../../../store/statuses/status-store.js';

/** What handling one message (or timing out tasks) reads and writes of the status store. */
export type MessageStatuses = Pick<
  StatusStore,
  'getStatus' | 'setStatus' | 'getEpisode' | 'openEpisode' | 'markAlerted' | 'closeEpisode'
>;

/** The dependencies of one message's handling (and of timeOutTasks). */
export interface MessageDeps {
  instructions: Pick<InstructionStore, 'get' | 'finishTask' | 'complete'> &
    Partial<Pick<InstructionStore, 'getMany' | 'settleMany'>>;
  events: Pick<EventStore, 'record'> & Partial<Pick<EventStore, 'recordMany'>>;
  statuses: MessageStatuses;
  runs: Pick<RunStore, 'setOutcome' | 'setAgentState'> & Partial<Pick<RunStore, 'setOutcomes'>>;
  labelsOf(agent: string): Promise<Labels>;
  /** The agent's current session (registry entry), for timeouts; none read when absent. */
  sessionOf?(agent: string): Promise<{ session_id: string; connected_at: number } | null>;
  enqueueAlert(alert: Alert): Promise<void>;
  /** Put a reconcile back because the agent was busy with one of its tasks. */
  retryLater(job: ReconcileAgentJob, delayMs: number): Promise<void>;
  logger: Logger;
  /** Cluster-wide counters (messages dropped unapplied); none counted when absent. */
  metrics?: Pick<MetricsSink, 'inc'>;
  now?: () => Date;
}

/**
 * resultHandler's dependencies: a batched results job also reads snapshots and writes many
 * agents' statuses at once.
 */
export interface ResultDeps extends MessageDeps {
  statuses: MessageStatuses & Pick<StatusStore, 'snapshot' | 'snapshots' | 'setStatusesMany'>;
}
