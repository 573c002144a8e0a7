/**
 * One agent: the connection, the runner and the outbox wired together. Takes a loaded config and
 * a logger; bin/commands/agent.ts does the process-level wiring (config file, signals).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isCleartextToRemote } from '../shared/config/agent-config.js';
import type { AgentConfig } from '../shared/config/types.js';
import type { Logger } from '../shared/logger.js';
import { AGENT_FEATURES, type AgentResult, PROTOCOL_VERSION } from '../shared/protocol.js';
import type { ExecutorType } from '../shared/types.js';
import { AgentCredential } from './agent-credential.js';
import { AgentConnection, type ConnectionOptions, type RegisteredPhaseMessage } from './connection.js';
import type { Executors } from './executors/executor.js';
import { availableExecutors, createExecutors, type ExecutorOptions } from './executors/index.js';
import { Outbox } from './outbox.js';
import { ResultDelivery } from './result-delivery.js';
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

/** Once per start: what the config lets through that an operator should know about. */
function warnIfInsecure(config: AgentConfig, logger: Logger): void {
  if (config.tls.insecure_skip_verify)
    logger.warn('TLS certificate verification is disabled (insecure_skip_verify)');
  if (isCleartextToRemote(config.server_url))
    logger.warn(
      { server_url: config.server_url },
      'allow_insecure: the token and all traffic travel in clear (ws:// to a host that is not loopback); use wss://',
    );
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

  let connection: AgentConnection;
  const resendAfterMs = opts.resendAfterMs ?? RESEND_AFTER_MS;
  const delivery = new ResultDelivery({
    outbox,
    connection: () => connection,
    logger,
    resendAfterMs,
    random: opts.connection?.random ?? Math.random,
  });
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

  const name = config.name || hostname();
  const credential = new AgentCredential(
    config.credential_file,
    name,
    logger.child({ component: 'identity' }),
  );
  connection = new AgentConnection({
    serverUrl: config.server_url,
    token: config.token,
    credential,
    ca: config.tls.ca_file ? readFileSync(config.tls.ca_file) : undefined,
    insecureSkipVerify: config.tls.insecure_skip_verify,
    logger: logger.child({ component: 'connection' }),
    ...opts.connection,
    buildRegister: () => ({
      type: 'register',
      v: PROTOCOL_VERSION,
      name,
      labels: config.labels,
      agent_version: opts.version,
      executors: offered,
      running: runner.runningInstructions(),
      features: [...AGENT_FEATURES],
    }),
    buildHeartbeat: () => ({ type: 'heartbeat', running: runner.runningInstructions() }),
    onRegistered: (msg) => {
      if (msg.credential) credential.enrolled(msg.credential);
      delivery.resendAll();
    },
    onMessage: (msg) => route(msg, runner, delivery),
  });

  warnIfInsecure(config, logger);

  return {
    runner,
    outbox,
    connection,
    start() {
      logger.info(
        { server_url: config.server_url, agent: config.name, executors: offered },
        'agent starting',
      );
      credential.load();
      connection.start();
      delivery.start();
    },
    async stop() {
      delivery.stop();
      await runner.shutdown();
      if (outbox.size > 0 && connection.isRegistered) await delivery.waitForAcks(opts.drainTimeoutMs ?? 3000);
      if (outbox.size > 0) logger.warn({ count: outbox.size }, 'exiting with unacknowledged results');
      await connection.stop();
    },
  };
}

/** A registered-phase message from the gateway, to the part that handles it. */
function route(msg: RegisteredPhaseMessage, runner: Runner, delivery: ResultDelivery): void {
  switch (msg.type) {
    case 'run':
      runner.handleRun(msg);
      return;
    case 'result_ack':
      delivery.acked(msg.result_ids);
      return;
    case 'result_retry':
      delivery.retryLater(msg.result_ids, msg.retry_after_ms);
      return;
    case 'cancel':
      runner.cancel(msg);
      return;
  }
}
