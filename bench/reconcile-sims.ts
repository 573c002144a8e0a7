/**
 * The simulated agents of bench/reconcile.ts, one child process holding `count` of them. Parent ⇄
 * child talk over the fork IPC channel (servers: reconcile-roles.ts).
 *   sims: connect → connected {agents}; phase {name, drift, salt} → phased; stats → stats {...}.
 */
import pino from 'pino';
import WebSocket from 'ws';
import { receiptOf } from '../agent/admission.js';
import { RESEND_AFTER_MS } from '../agent/agent.js';
import { BATCH_DEFAULTS } from '../agent/connection.js';
import { FrameBatcher } from '../agent/frame-batcher.js';
import { Outbox, retryDelayMs } from '../agent/outbox.js';
import { AGENT_FEATURES, type AgentResult, PROTOCOL_VERSION, type RunMessage } from '../shared/protocol.js';
import { answerTask, isDrifted, taskState } from './sim-answer.js';

type Msg = Record<string, unknown> & { type: string };
const send = (m: Record<string, unknown>) => process.send?.(m);

function onMessage(handler: (m: Msg) => void): void {
  process.on('message', (m: Msg) => handler(m));
}

/**
 * The n-th client source address on 127.0.0.0/8 (127.0.0.1, …, 127.0.0.254, 127.0.1.1, …): each
 * address has its own ephemeral port range, so 50,000 sockets never run out of ports.
 */
export function sourceAddress(n: number): string {
  return `127.0.${Math.floor(n / 254)}.${1 + (n % 254)}`;
}

/** One simulated agent's outbox and frame batcher (the real agent's own). */
interface Sim {
  outbox: Outbox;
  batcher: FrameBatcher;
}

const quiet = pino({ level: 'silent' });

interface PhaseStats {
  name: string;
  runs: number;
  firstRunAt: number | null;
  lastRunAt: number | null;
  receipts: number;
  results: number;
  taskResults: number;
  drifted: number;
  acked: number;
  /** Results the gateway refused with result_retry (each re-sent after the delay). */
  retried: number;
  /** Results re-sent because no ack came within RESEND_AFTER_MS (as the agent's outbox does). */
  overdue: number;
  outOfPhase: number;
}

/**
 * `count` simulated agents in this process. Each registers with labels that match every task,
 * heartbeats at the interval the gateway asks for, and answers every `run` at once with what the
 * real agent would send for instant steps: a receipt, then per task a task_result — satisfied, or
 * for a `drift` fraction of (agent, task) pairs drifted-then-applied, preceded by a check_result
 * per drifted step (an apply follows) — and a step_result per step but the last. Each keeps the
 * agent's own Outbox and FrameBatcher: unacknowledged results are re-sent after a `result_retry`'s
 * jittered delay or after 30 s, and an answer leaves as one `results` frame (split only where the
 * agent's batcher would split it).
 */
export async function runSims(opts: {
  /** The gateways' agent URLs: agent k (global index) connects to urls[k % urls.length]. */
  urls: string[];
  /** Bind agent k's socket to the (k % sourceIps)-th address of 127.0.0.0/8 (0: the OS picks). */
  sourceIps: number;
  token: string;
  count: number;
  offset: number;
  proc: number;
}): Promise<void> {
  const concurrency = 200;
  const sockets: WebSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  let phase: PhaseStats = newPhase('connect');
  let drift = 0;
  let salt = '';
  let seq = 0;
  let closed = 0;
  let reconnected = 0;
  let stopping = false;
  // As the agent does after a lost connection: come back after a jittered delay (a fresh socket,
  // registration and connect-triggered check; results not yet acked by the old session are lost
  // here, where the real agent keeps them).
  const reconnectLater = (i: number) => {
    const retry = () =>
      openOne(i).then(
        () => reconnected++,
        () => setTimeout(retry, 1000 + Math.random() * 4000).unref(),
      );
    setTimeout(retry, 1000 + Math.random() * 4000).unref();
  };
  const nonce = `${opts.proc}${Date.now().toString(36)}`;
  const nextId = () => `s${nonce}-${(seq++).toString(36)}`;

  function newPhase(name: string): PhaseStats {
    return {
      name,
      runs: 0,
      firstRunAt: null,
      lastRunAt: null,
      receipts: 0,
      results: 0,
      taskResults: 0,
      drifted: 0,
      acked: 0,
      retried: 0,
      overdue: 0,
      outOfPhase: 0,
    };
  }

  // Each simulated agent keeps the real agent's outbox and frame batcher, so a refused or
  // unacknowledged result is re-sent, and answers are framed, exactly as the agent would.
  const sims: Sim[] = [];
  const resendDue = (sim: Sim): number => {
    const due = sim.outbox.takeOverdue(Date.now(), RESEND_AFTER_MS);
    for (const r of due) sim.batcher.add(JSON.stringify(r));
    sim.batcher.flush();
    return due.length;
  };
  timers.push(
    setInterval(() => {
      for (const sim of sims) phase.overdue += resendDue(sim);
    }, RESEND_AFTER_MS / 3),
  );
  const ranInPhase = new Set<string>();
  const answer = (sim: Sim, agent: string, run: RunMessage) => {
    const now = Date.now();
    ranInPhase.add(agent);
    phase.runs++;
    phase.firstRunAt ??= now;
    phase.lastRunAt = now;
    // Results go into the outbox, everything into the batcher; one flush at the end.
    const keep = (result: AgentResult) => {
      sim.outbox.add(result);
      sim.batcher.add(JSON.stringify(result));
      phase.results++;
    };
    sim.batcher.add(JSON.stringify(receiptOf(run.instruction_id, { accepted: true })));
    phase.receipts++;
    const at = new Date(now).toISOString();
    for (const task of run.tasks) {
      const drifted = isDrifted(salt, drift, agent, task.task);
      if (drifted) phase.drifted++;
      // The bench's policy is remediate: every run is mode apply, so a drifted task is applied.
      answerTask(run, task, taskState(drifted, task.mode), { at, nextId, keep });
      phase.taskResults++;
    }
    sim.batcher.flush();
  };

  const agentName = (i: number) => `sim-${String(opts.offset + i).padStart(6, '0')}`;
  let next = 0;
  let connected = 0;
  const openOne = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const agent = agentName(i);
      const k = opts.offset + i;
      const ws = new WebSocket(opts.urls[k % opts.urls.length] ?? '', {
        headers: { authorization: `Bearer ${opts.token}` },
        ...(opts.sourceIps > 0 ? { localAddress: sourceAddress(k % opts.sourceIps) } : {}),
        perMessageDeflate: false,
        // The simulators stand in for remote hosts, whose CPU is not the control plane's: they
        // send with an all-zero mask key (valid; ws then skips the XOR pass, which runs in JS
        // here as its native add-on is not built) and trust the gateway's UTF-8.
        generateMask: (mask: Buffer) => mask.fill(0),
        skipUTF8Validation: true,
      });
      sockets.push(ws);
      const sim: Sim = {
        outbox: new Outbox(quiet),
        batcher: new FrameBatcher({ ...BATCH_DEFAULTS, write: (frame) => ws.send(frame) }),
      };
      sims.push(sim);
      ws.once('error', reject);
      ws.on('close', () => {
        closed++;
        if (!stopping) reconnectLater(i);
      });
      ws.once('open', () => {
        ws.send(
          JSON.stringify({
            type: 'register',
            v: PROTOCOL_VERSION,
            name: agent,
            labels: { role: 'bench', zone: String(i % 4) },
            agent_version: 'bench',
            executors: ['shell'],
            running: [],
            features: [...AGENT_FEATURES],
          }),
        );
      });
      ws.on('message', (data) => {
        const text = data.toString();
        // Cheap dispatch on the type without parsing acks fully twice.
        const msg = JSON.parse(text) as {
          type: string;
          result_ids?: string[];
          retry_after_ms?: number;
          heartbeat_interval_ms?: number;
        };
        switch (msg.type) {
          case 'registered': {
            connected++;
            const every = msg.heartbeat_interval_ms ?? 10_000;
            const beat = () => {
              if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"heartbeat","running":[]}');
            };
            // Spread heartbeats over the interval, as agents that connected at random times would.
            timers.push(
              setTimeout(() => {
                beat();
                timers.push(setInterval(beat, every));
              }, Math.random() * every),
            );
            resolve();
            return;
          }
          case 'run':
            answer(sim, agent, msg as unknown as RunMessage);
            return;
          case 'result_ack':
            phase.acked += sim.outbox.ack(msg.result_ids ?? []);
            return;
          case 'result_retry': {
            // As the agent: the refused results are due again after the jittered delay.
            const delay = retryDelayMs(msg.retry_after_ms ?? 0, RESEND_AFTER_MS);
            phase.retried += sim.outbox.retryAt(msg.result_ids ?? [], Date.now() + delay);
            setTimeout(() => resendDue(sim), delay).unref();
            return;
          }
          default:
            return;
        }
      });
    });

  const connectAll = async () => {
    const worker = async () => {
      while (next < opts.count) await openOne(next++);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, opts.count) }, worker));
    send({ type: 'connected', agents: connected });
  };

  onMessage((m) => {
    if (m.type === 'connect') void connectAll();
    else if (m.type === 'phase') {
      phase = newPhase(String(m.name));
      ranInPhase.clear();
      drift = Number(m.drift ?? 0);
      salt = String(m.salt ?? m.name);
      send({ type: 'phased' });
    } else if (m.type === 'stats') {
      const missing: string[] = [];
      for (let i = 0; i < opts.count && missing.length < 5; i++) {
        const agent = agentName(i);
        if (!ranInPhase.has(agent)) missing.push(agent);
      }
      send({ type: 'stats', ...phase, closed, reconnected, connected, missing });
    }
  });
  process.once('disconnect', () => {
    stopping = true;
    for (const t of timers) clearTimeout(t);
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  });
  send({ type: 'loaded' });
}
