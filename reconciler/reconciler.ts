/**
 * The reconciler: BullMQ workers over the poll, reconcile, results and alerts queues, each
 * handing its job to a small stateless handler with the real adapters injected here.
 * Killable at any moment: jobs are at-least-once and every handler is idempotent.
 */
import { randomUUID } from 'node:crypto';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Alert } from '../shared/alerts.js';
import type { ServerConfig } from '../shared/config/types.js';
import { Keys, QUEUE_NAMES } from '../shared/keys.js';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import { type MetricsSink, noopMetrics } from '../shared/metrics.js';
import type { RunMessage } from '../shared/protocol.js';
import { coerceError } from '../shared/types.js';
import { RedisStateStore } from '../store/desired-state/redis-state-store.js';
import type { EventStore } from '../store/events/event-store.js';
import { InboxBatcher } from '../store/inbox/gateway-inbox.js';
import { publishInstruction } from '../store/inbox/publish-instruction.js';
import type { InstructionRecord } from '../store/instructions/instruction-store.js';
import { MeteredInstructionStore } from '../store/instructions/metered-instruction-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { meterCompile } from '../store/metrics/metrics-recorder.js';
import { publishEndRecords } from '../store/output/output-publisher.js';
import { closeQueues, createQueues, type Queues } from '../store/queues/queues.js';
import { driftTickEvery, keepSchedules } from '../store/queues/schedules.js';
import { RedisAgentDirectory } from '../store/registry/redis-agent-directory.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import type { AgentRunState } from '../store/runs/run-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import { ALERT_JOB_OPTIONS, alertBackoff, alertFailureError, sendAlert } from './alert-sender.js';
import type { GitSource } from './git-source.js';
import { checkAlertWebhook } from './handlers/alert-policy.js';
import { deadlineHandler } from './handlers/deadline.js';
import { type AgentJob, driftTickHandler, fanoutHandler } from './handlers/fanout.js';
import { pollHandler } from './handlers/poll.js';
import type { AgentEntry } from './handlers/reconcile-agent.js';
import { reconcileAgentHandler } from './handlers/reconcile-agent.js';
import { deadlinesHandler, reconcileAgentsHandler } from './handlers/reconcile-agents.js';
import { type ResultDeps, resultHandler, timeOutTasks } from './handlers/result.js';
import {
  AGENTS_PER_JOB,
  DeadlineJob,
  DeadlinesJob,
  FanoutJob,
  parseJob,
  ReconcileAgentJob,
  ReconcileAgentsJob,
  ResultJob,
} from './jobs.js';

export interface ReconcilerOptions {
  config: ServerConfig;
  redis: Redis;
  logger: Logger;
  events: EventStore;
  git: GitSource;
  /** Per-queue worker concurrency. */
  concurrency?: Partial<Record<'reconcile' | 'results' | 'alerts', number>>;
  /** How long an instruction may run at most before it is called a timeout. */
  maxInstructionMs?: number;
  alertTimeoutMs?: number;
  /** Cluster-wide metrics (reconciler/metrics-recorder.ts); none recorded when absent. */
  metrics?: MetricsSink;
}

export interface Reconciler {
  queues: Queues;
  /** Resolves when every queue has nothing waiting or active (delayed jobs do not count). */
  idle(): Promise<boolean>;
  close(): Promise<void>;
}

const AGENT_JOB_OPTIONS = {
  removeOnComplete: { count: 1000, age: 3600 },
  removeOnFail: { count: 5000 },
  attempts: 3,
};
const ENQUEUE_BATCH = 1000;
const CLOSE_GRACE_MS = 5000;

/**
 * Results jobs handled at once. A job is a batch of up to 500 messages, read and written in a few
 * pipelines, so a handful keeps the CPU busy; 50 held ~50 jobs' data and replies in memory at
 * once, which the garbage collector paid for (10,000-agent bench: the same cycle time, less CPU).
 */
const RESULTS_CONCURRENCY = 8;

export function startReconciler(opts: ReconcilerOptions): Reconciler {
  const { config, redis } = opts;
  const logger = opts.logger.child({ component: 'reconciler' });
  const metrics = opts.metrics ?? noopMetrics;
  const keys = new Keys(config.redis.prefix);
  const queues = createQueues(redis, keys, logger);
  // The stores' own connection: auto-pipelined, so the commands of concurrent handlers share one
  // socket write per tick, and its MULTIs do not copy the scripts BullMQ loads onto its clients.
  const store = redis.duplicate({ enableAutoPipelining: true });
  store.on('error', () => {}); // the main client logs an outage once
  // Dispatch (plan, record, send) on a connection of its own. ioredis runs one auto-pipeline at a
  // time per connection: sharing one with a results backlog made every step of a 500-agent
  // `agents` job wait behind the results handlers' round trips (15 s per job at 10,000 agents).
  const dispatch = redis.duplicate({ enableAutoPipelining: true });
  dispatch.on('error', () => {});
  const hb = config.heartbeat_interval_ms;
  // A gateway announces itself every heartbeat, as its agents renew their registry entries; three
  // missed means it (or the agent's index entry) is gone.
  const gatewayStaleMs = 3 * hb + 5000;
  const inbox = new InboxBatcher(dispatch, keys, gatewayStaleMs);
  const state = new RedisStateStore({ redis: store, keys });
  const ttlMs = config.event_store.redis.ttl_ms;
  /** The stores both connections carry alike. */
  const storesOn = (client: Redis) => ({
    statuses: new RedisStatusStore({ redis: client, keys, ttlMs }),
    runs: new RedisRunStore({ redis: client, keys }),
    directory: new RedisAgentDirectory({
      redis: client,
      keys,
      staleAfterMs: gatewayStaleMs,
      knownForMs: ttlMs,
    }),
  });
  const { statuses, runs, directory } = storesOn(store);
  const instructions = new MeteredInstructionStore({
    store: new RedisInstructionStore({ redis: store, keys }),
    metrics,
  });
  // Dispatch only saves instructions: nothing there for the metered store to count.
  const dispatchStores = {
    ...storesOn(dispatch),
    instructions: new RedisInstructionStore({ redis: dispatch, keys }),
  };
  const compiler = new ManifestCompiler();
  // A disconnected agent gets at least ~10 s (three checks, 5 s apart) to come back before its work times out.
  const checkEveryMs = Math.max(3 * hb, 5000);

  // Agents alike (same trigger, run, task filter, and due within the same second) share one
  // `agents` job of up to AGENTS_PER_JOB; busy retries stay single-agent jobs.
  const enqueueAgents = async (jobs: AgentJob[]) => {
    const specs: Array<{ name: string; data: unknown; opts: Record<string, unknown> }> = [];
    const groups = new Map<string, ReconcileAgentsJob>();
    for (const j of jobs) {
      if (j.data.retry > 0) {
        specs.push({ name: 'agent', data: j.data, opts: { ...AGENT_JOB_OPTIONS, delay: j.delayMs } });
        continue;
      }
      const key = JSON.stringify([j.data.trigger, j.data.run_id, j.data.tasks, Math.floor(j.delayMs / 1000)]);
      let group = groups.get(key);
      if (!group || group.agents.length >= AGENTS_PER_JOB) {
        group = { agents: [], trigger: j.data.trigger, run_id: j.data.run_id, tasks: j.data.tasks };
        groups.set(key, group);
        specs.push({ name: 'agents', data: group, opts: { ...AGENT_JOB_OPTIONS, delay: j.delayMs } });
      }
      group.agents.push(j.data.agent);
    }
    for (let i = 0; i < specs.length; i += ENQUEUE_BATCH) {
      await queues.reconcile.addBulk(specs.slice(i, i + ENQUEUE_BATCH));
    }
  };
  const enqueueAlert = async (alert: Alert) => {
    if (!config.drift.alert_webhook) {
      logger.warn(
        { alert: alert.payload.event, task: alert.payload.task },
        'alert dropped: no alert_webhook configured',
      );
      return;
    }
    await queues.alerts.add(
      'alert',
      { alert, url: config.drift.alert_webhook },
      { ...ALERT_JOB_OPTIONS, jobId: alert.id },
    );
  };
  const resultDeps: ResultDeps = {
    instructions,
    events: opts.events,
    statuses,
    runs,
    labelsOf: async (agent) => (await directory.get(agent))?.labels ?? {},
    enqueueAlert,
    retryLater: async (job, delayMs) => enqueueAgents([{ data: job, delayMs }]),
    logger,
  };

  const singleFlight = async <T>(fn: () => Promise<T>): Promise<T | null> => {
    const token = randomUUID();
    const lockMs = 10 * 60_000;
    if ((await redis.set(keys.pollLock(), token, 'PX', lockMs, 'NX')) !== 'OK') return null;
    try {
      return await fn();
    } finally {
      // Release only our own lock (it may have expired and been taken by another poll).
      await redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        1,
        keys.pollLock(),
        token,
      );
    }
  };

  const pollWorker = async (job: Job) =>
    pollHandler({
      fetch: async () => opts.git.fetch(),
      compile: (files) =>
        meterCompile(metrics, async () => checkAlertWebhook(await compiler.compile(files), config.drift)),
      state,
      fanoutAll: async () => {
        await queues.reconcile.add('fanout', { trigger: 'commit', run_id: null, task: null, agent: null });
      },
      singleFlight,
      logger: logger.child({ queue: job.queueName, job: job.id }),
    }).then((outcome) => {
      metrics.inc('polls', { result: outcome.kind });
      // A push webhook's poll must fetch after the push: if another poll held the lock, it may
      // have fetched before it, so this one is retried (with backoff) rather than dropped.
      if (outcome.kind === 'skipped' && (job.data as { retry_if_busy?: unknown })?.retry_if_busy === true) {
        throw new Error('another poll is running; retrying after it');
      }
      return outcome;
    });

  /** What the single- and many-agent reconcile handlers share. */
  const dispatchDeps = (log: Logger) => ({
    current: () => state.current(),
    defaultPolicy: config.drift.policy,
    send: async (entry: AgentEntry, message: RunMessage) => {
      const out = await publishInstruction(dispatch, keys, entry, message, inbox);
      if (out.status === 'undeliverable') {
        await queues.results.add('undeliverable', {
          kind: 'undeliverable',
          agent: entry.name,
          instruction_id: message.instruction_id,
          reason: out.reason,
        });
      }
      return out.status === 'published' ? ('delivered' as const) : ('undeliverable' as const);
    },
    saveInstruction: (record: InstructionRecord) => dispatchStores.instructions.save(record),
    runState: (runId: string, agent: string, s: AgentRunState, tasks?: string[], executionIds?: string[]) =>
      dispatchStores.runs.setAgentState(runId, agent, s, tasks, executionIds),
    forgetTasks: (agent: string, keep: string[]) => dispatchStores.statuses.forgetTasks(agent, keep),
    logger: log,
  });
  const deadlineDeps = {
    getInstruction: (id: string) => instructions.get(id),
    isRunning: async (agent: string, id: string) => {
      const entry = (await directory.get(agent)) as { running?: string[] } | null;
      return entry?.running?.includes(id) ?? false;
    },
    timeOut: (record: InstructionRecord, tasks: string[], waited: number) =>
      timeOutTasks(resultDeps, record, tasks, waited),
    // Live watchers of a timed-out execution get its end record, as a finished one's do.
    endExecutions: (ends: Array<{ agent: string; task: string; execution_id: string }>) =>
      publishEndRecords(
        store,
        keys,
        ends.map((e) => ({ ...e, outcome: 'timeout' })),
      ),
    checkEveryMs,
    maxWaitMs: opts.maxInstructionMs ?? 6 * 3600_000,
  };

  const reconcileWorker = async (job: Job) => {
    switch (job.name) {
      case 'agent': {
        const data = parseJob(ReconcileAgentJob, job.data, 'reconcile agent');
        // Stable across retries of this job, unique across FLUSHALLs (the timestamp).
        const instructionId = `i${job.id ?? randomUUID()}-${job.timestamp.toString(36)}`.replace(
          /[^A-Za-z0-9._~-]/g,
          '_',
        );
        return reconcileAgentHandler(data, instructionId, {
          ...dispatchDeps(logger.child({ queue: job.queueName, job: job.id, agent: data.agent })),
          getAgent: (name) => dispatchStores.directory.get(name),
          scheduleDeadline: async (id) => {
            await queues.reconcile.add(
              'deadline',
              { instruction_id: id, misses: 0 },
              { delay: checkEveryMs, ...AGENT_JOB_OPTIONS },
            );
          },
        });
      }
      case 'agents': {
        const data = parseJob(ReconcileAgentsJob, job.data, 'reconcile agents');
        const base = `i${job.id ?? randomUUID()}`;
        const stamp = job.timestamp.toString(36);
        return reconcileAgentsHandler(
          data,
          // Stable across retries of this job: the agent's place in it.
          (i) => `${base}-${i}-${stamp}`.replace(/[^A-Za-z0-9._~-]/g, '_'),
          {
            ...dispatchDeps(logger.child({ queue: job.queueName, job: job.id })),
            getAgents: (names) => Promise.all(names.map((name) => dispatchStores.directory.get(name))),
            scheduleDeadlines: async (ids) => {
              await queues.reconcile.add(
                'deadlines',
                { checks: ids.map((id) => ({ instruction_id: id, misses: 0 })) },
                { delay: checkEveryMs, ...AGENT_JOB_OPTIONS },
              );
            },
          },
        );
      }
      case 'deadlines':
        return deadlinesHandler(parseJob(DeadlinesJob, job.data, 'deadlines'), {
          ...deadlineDeps,
          rescheduleAll: async (checks, delay) => {
            await queues.reconcile.add('deadlines', { checks }, { delay, ...AGENT_JOB_OPTIONS });
          },
        });
      case 'fanout':
        return fanoutHandler(parseJob(FanoutJob, job.data, 'fanout'), {
          listAgents: () => directory.list(),
          agentNames: () => directory.names(),
          current: () => state.current(),
          enqueueAgents,
          setRunAgents: (runId, agents) => runs.setAgents(runId, agents),
        });
      case 'deadline':
        return deadlineHandler(parseJob(DeadlineJob, job.data, 'deadline'), {
          ...deadlineDeps,
          reschedule: async (data, delay) => {
            await queues.reconcile.add('deadline', data, { delay, ...AGENT_JOB_OPTIONS });
          },
        });
      case 'drift-tick': {
        const now = Date.now();
        const every = driftTickEvery(config.git.poll_interval_ms);
        const end = now + every;
        const previous = await redis.set(keys.driftCursor(), String(end), 'GET');
        const start = Math.max(previous ? Number(previous) : now, now - config.git.poll_interval_ms);
        return driftTickHandler(start, end, now, {
          agentNames: () => directory.names(),
          enqueueAgents,
          pollIntervalMs: config.git.poll_interval_ms,
        });
      }
      default:
        throw new UnrecoverableError(`unknown reconcile job "${job.name}"`);
    }
  };

  const resultWorker = async (job: Job) =>
    resultHandler(parseJob(ResultJob, job.data, 'result'), {
      ...resultDeps,
      logger: logger.child({ queue: job.queueName, job: job.id }),
    });

  const alertWorker = async (job: Job) => {
    const { alert, url } = job.data as { alert: Alert; url: string };
    const result = await sendAlert({
      url,
      payload: alert.payload,
      alertId: alert.id,
      timeoutMs: opts.alertTimeoutMs ?? 10_000,
    });
    const event = { event: alert.payload.event };
    if (result.ok) {
      metrics.inc('alertsSent', event);
      return { status: result.status };
    }
    metrics.inc('alertFailures', event);
    const lastAttempt = !result.retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (lastAttempt) {
      metrics.inc('alertsAbandoned', event);
      await opts.events.record({
        kind: 'alert_failed',
        // Derived from the alert: a re-run of the last attempt records the same event once.
        id: `alert_failed~${alert.id}`,
        at: new Date().toISOString(),
        agent: alert.payload.agent.name,
        labels: alert.payload.agent.labels,
        task: alert.payload.task,
        revision: alert.payload.revision,
        alert_id: alert.id,
        alert_event: alert.payload.event,
        attempts: job.attemptsMade + 1,
        error: result.error.slice(0, 2000),
      });
    }
    throw alertFailureError(result);
  };

  const workerOptions = { connection: redis, prefix: keys.bullPrefix };
  const c = opts.concurrency ?? {};
  const workers = [
    new Worker(QUEUE_NAMES.poll, pollWorker, { ...workerOptions, concurrency: 1 }),
    new Worker(QUEUE_NAMES.reconcile, reconcileWorker, { ...workerOptions, concurrency: c.reconcile ?? 50 }),
    new Worker(QUEUE_NAMES.results, resultWorker, {
      ...workerOptions,
      concurrency: c.results ?? RESULTS_CONCURRENCY,
    }),
    new Worker(QUEUE_NAMES.alerts, alertWorker, {
      ...workerOptions,
      concurrency: c.alerts ?? 10,
      settings: { backoffStrategy: alertBackoff },
    }),
  ];
  const loggedErrors = new Set<string>();
  for (const w of workers) {
    // After a FLUSHALL, in-flight jobs fail with "Missing key"; workers carry on. Log once per kind.
    w.on('error', (err) => {
      const kind = `${w.name}:${coerceError(err).message.slice(0, 60)}`;
      if (loggedErrors.has(kind)) return;
      loggedErrors.add(kind);
      setTimeout(() => loggedErrors.delete(kind), 60_000).unref();
      logger.warn({ queue: w.name, err: coerceError(err).message }, 'worker error');
    });
    w.on('failed', (job, err) => {
      logger.warn(
        { queue: w.name, job: job?.id, job_name: job?.name, err: err.message, attempts: job?.attemptsMade },
        'job failed',
      );
    });
  }
  const stopSchedules = keepSchedules(queues, config.git.poll_interval_ms, logger);

  return {
    queues,
    async idle() {
      const counts = await Promise.all(
        Object.values(queues).map((q) =>
          q.getJobCounts('waiting', 'active', 'prioritized', 'waiting-children'),
        ),
      );
      return counts.every((c) => Object.values(c).every((n) => n === 0));
    },
    async close() {
      stopSchedules();
      // Let running jobs finish, but not forever (Redis may be gone): then force.
      await Promise.allSettled(
        workers.map((w) =>
          Promise.race([w.close(), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]).then(() =>
            w.close(true),
          ),
        ),
      );
      await closeQueues(queues);
      store.disconnect();
      dispatch.disconnect();
    },
  };
}
