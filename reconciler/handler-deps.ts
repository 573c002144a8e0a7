/**
 * The adapters the reconcile handlers share, built on the reconciler's stores and queues: what
 * dispatch (one or many agents) needs, and what deadline checks need.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../shared/config/types.js';
import { undeliverableJob } from '../shared/jobs/builders.js';
import type { Keys } from '../shared/keys.js';
import type { RunMessage } from '../shared/protocol.js';
import { publishInstruction } from '../store/inbox/publish-instruction.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';
import { publishEndRecords } from '../store/output/output-publisher.js';
import { addJob, type Queues } from '../store/queues/queues.js';
import type { AgentRunState } from '../store/runs/run-store.js';
import type { DeadlineDeps } from './handlers/deadline.js';
import type { AgentEntry, ReconcileAgentDeps } from './handlers/reconcile-agent.js';
import { type ResultDeps, timeOutTasks } from './handlers/result.js';
import type { ReconcilerStores } from './reconciler-stores.js';

export interface HandlerDepsContext {
  config: ServerConfig;
  keys: Keys;
  /** Tags each instruction id with the agent it is sent to (shared/identity/instruction-tag.ts). */
  identityKey: Buffer;
  stores: ReconcilerStores;
  queues: Queues;
  resultDeps: ResultDeps;
  /** How often a deadline is checked. */
  checkEveryMs: number;
  /** How long an instruction may run at most before it is called a timeout. */
  maxInstructionMs: number;
}

/** What the single- and many-agent reconcile handlers share. */
export function dispatchDeps(
  c: HandlerDepsContext,
  log: Logger,
): Omit<ReconcileAgentDeps, 'getAgent' | 'scheduleDeadline'> {
  const { stores, keys } = c;
  return {
    current: () => stores.state.current(),
    defaultPolicy: c.config.drift.policy,
    send: async (entry: AgentEntry, message: RunMessage) => {
      const out = await publishInstruction(stores.dispatch, keys, entry, message, stores.inbox);
      if (out.status === 'undeliverable') {
        const instructionId = message.instruction_id;
        await addJob(
          c.queues.results,
          undeliverableJob({
            kind: 'undeliverable',
            agent: entry.name,
            instruction_id: instructionId,
            reason: out.reason,
          }),
        );
      }
      return out.status === 'published' ? ('delivered' as const) : ('undeliverable' as const);
    },
    saveInstruction: (record: InstructionRecord) => stores.onDispatch.instructions.save(record),
    runState: (runId: string, agent: string, s: AgentRunState, tasks?: string[], executionIds?: string[]) =>
      stores.onDispatch.runs.setAgentState(runId, agent, s, tasks, executionIds),
    forgetTasks: (agent: string, keep: string[]) => stores.onDispatch.statuses.forgetTasks(agent, keep),
    logger: log,
  };
}

/** What the single- and many-instruction deadline handlers share. */
export function deadlineDeps(c: HandlerDepsContext): Omit<DeadlineDeps, 'reschedule'> {
  const { stores, keys } = c;
  return {
    getInstruction: (id: string) => stores.instructions.get(id),
    isRunning: async (agent: string, id: string) => {
      const entry = (await stores.directory.get(agent)) as { running?: string[] } | null;
      return entry?.running?.includes(id) ?? false;
    },
    timeOut: (record: InstructionRecord, tasks: string[], waited: number) =>
      timeOutTasks(c.resultDeps, record, tasks, waited),
    // Live watchers of a timed-out execution get its end record, as a finished one's do.
    endExecutions: (ends: Array<{ agent: string; task: string; execution_id: string }>) =>
      publishEndRecords(
        stores.store,
        keys,
        ends.map((e) => ({ ...e, outcome: 'timeout' })),
      ),
    checkEveryMs: c.checkEveryMs,
    maxWaitMs: c.maxInstructionMs,
  };
}
