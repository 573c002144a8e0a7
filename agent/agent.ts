/**
 * One agent: the connection, the runner and the outbox wired together. Takes a loaded config and
 * a logger; bin/commands/agent.ts does the process-level wiring (config file, signals).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AgentConfig } from '../shared/config/types.js';
import type { Logger } from '../shared/logger.js';
import { AGENT_FEATURES, type AgentResult, PROTOCOL_VERSION } from '../shared/protocol.js';
import type { ExecutorType } from '../shared/types.js';
import { AgentConnection, type ConnectionOptions } from './connection.js';
import type { Executors } from './executors/executor.js';
import { availableExecutors, createExecutors, type ExecutorOptions } from './executors/index.js';
import { Outbox, retryDelayMs } from './outbox.js';
import { Runner } from './runner.js';

/** A result with no ack this long after it was sent is sent again (`resendAfterMs`). */
export const RESEND_AFTER_MS = 30_000;

export interface AgentOptions {
  config: AgentConfig;
  logger: Logger;
  version: string;
  /** Overrides for tests: executors, binaries, backoff timings. */
  executors?: Executors;
  executorOptions?: Partial<ExecutorOptions>;
  connection?: Pick<
    ConnectionOptions,
    | 'backoffBaseMs'
    | 'backoffCapMs'
    | 'registerTimeoutMs'
    | 'random'
    | 'batchWindowMs'
    | 'batchMaxItems'
    | 'batchMaxBytes'
  >;
  outboxCapacity?: number;
  /** On shutdown, how long to wait for the gateway to acknowledge the last results. */
  drainTimeoutMs?: number;
  /**
   * A result not acknowledged this long after it was sent is sent again (default 30 s). Also the
   * longest a `result_retry` from the gateway may make a result wait.
   */
  resendAfterMs?: number;
}

export interface Agent {
  start(): void;
  /** Stop accepting, cancel running commands, give results a moment to be acked, close the socket. */
  stop(): Promise<void>;
  readonly runner: Runner;
  readonly outbox: Outbox;
  readonly connection: AgentConnection;
}

export function createAgent(opts: AgentOptions): Agent {
  const { config, logger } = opts;
  const execOptions: ExecutorOptions = {
    defaultShell: config.execution.default_shell,
    ...opts.executorOptions,
  };
  const executors = opts.executors ?? createExecutors(execOptions);
  const offered: ExecutorType[] = opts.executors
    ? ['shell', 'systemd', 'mise']
    : availableExecutors(execOptions);
  const outbox = new Outbox(logger, opts.outboxCapacity);
  const ackWaiters = new Set<() => void>();

  let connection: AgentConnection;
  let resendTimer: NodeJS.Timeout | null = null;
  const resendAfterMs = opts.resendAfterMs ?? RESEND_AFTER_MS;
  const random = opts.connection?.random ?? Math.random;

  /** Re-sends what has come due (overdue, or asked for by a `result_retry`) as one batch. */
  const resendDue = (why: string): void => {
    if (!connection.isRegistered) return;
    const due = outbox.takeOverdue(Date.now(), resendAfterMs);
    if (due.length === 0) return;
    logger.info({ count: due.length }, why);
    for (const r of due) connection.send(r);
    connection.flush();
  };

  // One one-shot timer for the earliest `result_retry` due time, re-armed for the next one.
  let retryTimer: NodeJS.Timeout | null = null;
  let retryTimerAt = Number.POSITIVE_INFINITY;
  const armRetry = (): void => {
    const at = outbox.nextDueAt();
    if (at === null || at >= retryTimerAt) return;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimerAt = at;
    retryTimer = setTimeout(
      () => {
        retryTimer = null;
        retryTimerAt = Number.POSITIVE_INFINITY;
        // Not registered: the next registration re-sends everything and clears the due times.
        if (!connection.isRegistered) return;
        resendDue('re-sending results the gateway asked to retry');
        armRetry();
      },
      Math.max(0, at - Date.now()),
    );
    retryTimer.unref();
  };
  // Into the outbox first, then into the connection's next `results` frame: if that frame never
  // leaves (socket closed within the batch window), the outbox re-sends the result after reconnecting.
  const emitResult = (result: AgentResult): void => {
    outbox.add(result);
    connection.send(result);
  };
  const runner = new Runner({
    executors,
    commandTimeoutMs: config.execution.command_timeout_ms,
    logger: logger.child({ component: 'runner' }),
    sendReceipt: (m) => connection.send(m),
    sendOutput: (m) => connection.sendBestEffort(m),
    emitResult,
  });

  connection = new AgentConnection({
    serverUrl: config.server_url,
    token: config.token,
    ca: config.tls.ca_file ? readFileSync(config.tls.ca_file) : undefined,
    insecureSkipVerify: config.tls.insecure_skip_verify,
    logger: logger.child({ component: 'connection' }),
    ...opts.connection,
    buildRegister: () => ({
      type: 'register',
      v: PROTOCOL_VERSION,
      name: config.name || hostname(),
      labels: config.labels,
      agent_version: opts.version,
      executors: offered,
      running: runner.runningInstructions(),
      features: [...AGENT_FEATURES],
    }),
    buildHeartbeat: () => ({ type: 'heartbeat', running: runner.runningInstructions() }),
    onRegistered: () => {
      // Everything not acknowledged goes again, oldest first; the gateway dedupes by result_id.
      const pending = outbox.pending();
      if (pending.length > 0) logger.info({ count: pending.length }, 're-sending unacknowledged results');
      for (const r of pending) connection.send(r);
      connection.flush();
      outbox.markAllSent(Date.now());
    },
    onMessage: (msg) => {
      switch (msg.type) {
        case 'run':
          runner.handleRun(msg);
          return;
        case 'result_ack':
          outbox.ack(msg.result_ids);
          if (outbox.size === 0) for (const w of ackWaiters) w();
          return;
        case 'result_retry': {
          // The gateway's backlog is full: come back after its delay (jittered, at most resendAfterMs).
          const delay = retryDelayMs(msg.retry_after_ms, resendAfterMs, random);
          const found = outbox.retryAt(msg.result_ids, Date.now() + delay);
          if (found === 0) return;
          logger.debug({ count: found, delay_ms: delay }, 'gateway busy: results will be re-sent');
          armRetry();
          return;
        }
        case 'cancel':
          runner.cancel(msg);
          return;
      }
    },
  });

  if (config.tls.insecure_skip_verify)
    logger.warn('TLS certificate verification is disabled (insecure_skip_verify)');

  return {
    runner,
    outbox,
    connection,
    start() {
      logger.info(
        { server_url: config.server_url, agent: config.name, executors: offered },
        'agent starting',
      );
      connection.start();
      resendTimer = setInterval(
        () => resendDue('re-sending results the gateway has not acknowledged'),
        Math.max(100, Math.floor(resendAfterMs / 3)),
      );
      resendTimer.unref();
    },
    async stop() {
      if (resendTimer) clearInterval(resendTimer);
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      retryTimerAt = Number.POSITIVE_INFINITY;
      await runner.shutdown();
      if (outbox.size > 0 && connection.isRegistered) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            ackWaiters.delete(done);
            resolve();
          };
          const timer = setTimeout(done, opts.drainTimeoutMs ?? 3000);
          ackWaiters.add(done);
        });
      }
      if (outbox.size > 0) logger.warn({ count: outbox.size }, 'exiting with unacknowledged results');
      await connection.stop();
    },
  };
}
