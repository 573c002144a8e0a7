/**
 * A gateway in-process on 127.0.0.1:0 against a test Redis, and `ws` clients that play agents.
 */
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import {
  createGateway,
  type Gateway,
  type GatewayConfig,
  type GatewayLimits,
} from '../../gateway/gateway.js';
import type { GatewayMetricsPort } from '../../gateway/gateway-metrics.js';
import type { JobQueue } from '../../gateway/result-forwarder.js';
import { SINGLE_REDIS } from '../../shared/config/redis-topology.js';
import type { ScopedAgentToken } from '../../shared/config/types.js';
import { issueInstructionId } from '../../shared/identity/instruction-tag.js';
import { Keys } from '../../shared/keys.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import {
  type GatewayMessage,
  type InstructionReceiptMessage,
  PROTOCOL_VERSION,
  parseGatewayMessage,
  type RunMessage,
  type StepResultMessage,
  type TaskResultMessage,
} from '../../shared/protocol.js';
import type { Registry } from '../../store/registry/registry.js';
import type { TestRedis } from '../../testkit/redis.js';

/** What a raw test agent sends: an accepted receipt, a satisfied check, a step's progress. */
export const receiptMessage = (instructionId: string): InstructionReceiptMessage => ({
  type: 'instruction_receipt',
  instruction_id: instructionId,
  accepted: true,
  reason: null,
});

/** An execution index for a made-up result id (its digits), so execution ids stay `<instruction>.<n>`. */
const executionIndex = (resultId: string): number => Number(resultId.replace(/\D/g, '').slice(-6) || '0');

export const taskResultMessage = (instructionId: string, resultId: string): TaskResultMessage => ({
  type: 'task_result',
  result_id: resultId,
  instruction_id: instructionId,
  execution_id: `${instructionId}.${executionIndex(resultId)}`,
  task: `task-${resultId}`,
  mode: 'check',
  outcome: 'satisfied',
  started_at: '2025-01-01T00:00:00Z',
  finished_at: '2025-01-01T00:00:01Z',
  duration_ms: 1000,
  steps: [],
});

export const stepResultMessage = (instructionId: string, resultId: string): StepResultMessage => ({
  type: 'step_result',
  result_id: resultId,
  instruction_id: instructionId,
  execution_id: `${instructionId}.0`,
  task: 'task',
  result: {
    step: 'render',
    type: 'shell',
    outcome: 'satisfied',
    exit_code: 0,
    apply_exit_code: null,
    duration_ms: 1,
    output_tail: '',
    error: null,
  },
});

/** A register as a test agent sends it (no `features` key when it advertises none). */
export const registerMessage = (
  name: string,
  labels: Record<string, string> = {},
  features: string[] = [],
) => ({
  type: 'register',
  v: PROTOCOL_VERSION,
  name,
  labels,
  agent_version: 'test',
  executors: ['shell'],
  running: [],
  ...(features.length > 0 ? { features } : {}),
});

/** A run of one shell step (`deploy`/`one`, execution `<instruction>.0`) running `command`. */
export const runMessage = (instructionId: string, command = 'true'): RunMessage => ({
  type: 'run',
  instruction_id: instructionId,
  revision: 'abc123',
  trigger: 'manual',
  tasks: [
    {
      execution_id: `${instructionId}.0`,
      task: 'deploy',
      mode: 'apply',
      steps: [
        {
          type: 'shell',
          name: 'one',
          check: 'true',
          command,
          working_dir: null,
          run_as: null,
          env: {},
          on_failure: 'abort',
        },
      ],
    },
  ],
});

export const TOKEN = 'test-agent-token-0123456789';

/** The identity key test gateways use unless told otherwise. */
export const TEST_IDENTITY_KEY = Buffer.alloc(32, 7);

/** An instruction id issued to `agent` under the test key (`seed` makes it distinct and stable). */
export function issued(agent: string, seed: string, key: Buffer = TEST_IDENTITY_KEY): string {
  return issueInstructionId(key, agent, seed);
}

export interface TestGateway {
  gateway: Gateway;
  port: number;
  url: string;
  redis: Redis;
  keys: Keys;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  config?: Partial<GatewayConfig>;
  limits?: Partial<GatewayLimits>;
  gatewayId?: string;
  queues?: { results: JobQueue; reconcile: JobQueue };
  scoped?: ScopedAgentToken[];
  /** Share one client between gateways (default: a fresh one per gateway). */
  redis?: Redis;
  /** Replace the Redis registry (e.g. wrap it to count its writes). */
  registry?: (redis: Redis, keys: Keys) => Registry;
  /** Socket-path counters (e.g. a GatewayMetrics, which can also `watch` the gateway). */
  metrics?: GatewayMetricsPort;
  /** Default TEST_IDENTITY_KEY; null: the gateway loads it as in production (identity.key or Redis). */
  identityKey?: Buffer | null;
}

export function captureLogger(logs: Array<Record<string, unknown>>): Logger {
  return createLogger({ level: 'debug', format: 'json' }, 'test-gateway', {
    write(line: string) {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
}

export async function startGateway(r: TestRedis, opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const redis = opts.redis ?? r.client();
  const logs: Array<Record<string, unknown>> = [];
  const config: GatewayConfig = {
    listen_agents: '127.0.0.1:0',
    agent_tokens: [TOKEN],
    scoped_agent_tokens: opts.scoped ?? [],
    heartbeat_interval_ms: 200,
    tls: { enabled: false, cert_file: null, key_file: null },
    redis: { url: r.url, prefix: r.prefix, ...SINGLE_REDIS },
    ...opts.config,
  };
  const gateway = createGateway({
    config,
    redis,
    logger: captureLogger(logs),
    ...(opts.identityKey === null ? {} : { identityKey: opts.identityKey ?? TEST_IDENTITY_KEY }),
    ...(opts.gatewayId ? { gatewayId: opts.gatewayId } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.queues ? { queues: opts.queues } : {}),
    ...(opts.registry ? { registry: opts.registry(redis, new Keys(r.prefix)) } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const { port } = await gateway.listen();
  const scheme = config.tls.enabled ? 'wss' : 'ws';
  return {
    gateway,
    port,
    url: `${scheme}://127.0.0.1:${port}/agent`,
    redis,
    keys: new Keys(r.prefix),
    logs,
    stop: () => gateway.drain(),
  };
}

export interface Closed {
  code: number;
  reason: string;
}

/** A `ws` client speaking the agent protocol, with awaitable messages and close. */
export class TestAgent {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  /** Set when the server answered the upgrade with an HTTP status instead of 101. */
  httpStatus: Promise<{ status: number; body: string } | null>;
  private readonly inbox: GatewayMessage[] = [];
  private waiters: Array<{ type: string | null; resolve: (m: GatewayMessage) => void }> = [];

  constructor(
    url: string,
    options: {
      token?: string | null;
      ca?: Buffer;
      headers?: Record<string, string>;
      /** Source address to connect from (127.0.0.0/8 is all loopback on Linux). */
      localAddress?: string;
    } = {},
  ) {
    const token = options.token === undefined ? TOKEN : options.token;
    const headers: Record<string, string> = { ...options.headers };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    this.ws = new WebSocket(url, {
      headers,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    this.ws.on('error', () => {});
    let setStatus: (v: { status: number; body: string } | null) => void = () => {};
    this.httpStatus = new Promise((resolve) => {
      setStatus = resolve;
    });
    this.ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      // With this listener attached, ws leaves aborting the handshake to us.
      const done = () => {
        setStatus({ status: res.statusCode ?? 0, body });
        this.ws.terminate();
      };
      res.on('end', done);
      res.on('error', done);
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        setStatus(null);
        resolve();
      });
      this.ws.once('close', () => reject(new Error('closed before open')));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('message', (data) => {
      const parsed = parseGatewayMessage(data.toString());
      if (!parsed.ok) throw new Error(`gateway sent an invalid message: ${parsed.error}`);
      const i = this.waiters.findIndex((w) => w.type === null || w.type === parsed.message.type);
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w?.resolve(parsed.message);
      } else {
        this.inbox.push(parsed.message);
      }
    });
  }

  /** The next message (of `type`, if given; others stay queued). */
  next<T extends GatewayMessage['type']>(type?: T): Promise<Extract<GatewayMessage, { type: T }>> {
    const i = this.inbox.findIndex((m) => type === undefined || m.type === type);
    if (i >= 0) {
      const [m] = this.inbox.splice(i, 1);
      return Promise.resolve(m as Extract<GatewayMessage, { type: T }>);
    }
    return new Promise((resolve) => {
      this.waiters.push({ type: type ?? null, resolve: resolve as (m: GatewayMessage) => void });
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** `features`: what the agent advertises (none, by default: as an agent built before them). */
  async register(
    name: string,
    labels: Record<string, string> = {},
    features: string[] = [],
  ): Promise<Extract<GatewayMessage, { type: 'registered' }>> {
    await this.opened;
    this.send(registerMessage(name, labels, features));
    return this.next('registered');
  }

  heartbeat(): void {
    this.send({ type: 'heartbeat', running: [] });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.terminate();
    await this.closed;
  }
}

/** Poll a condition that has no event (a Redis key expiring) until it holds or the deadline passes. */
export async function eventually<T>(
  probe: () => Promise<T>,
  accept: (v: T) => boolean,
  timeoutMs = 5000,
  stepMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (accept(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs}ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Every key under the test prefix. */
export function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  return redis.keys(`*${prefix}*`);
}
