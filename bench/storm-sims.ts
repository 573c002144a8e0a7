/**
 * The simulated agents of bench/storm.ts, one child process holding `count` of them. Unlike
 * bench/reconcile-sims.ts they live through a gateway's death as the real agent does: they
 * advertise the agent's features (AGENT_FEATURES, `identity` included), keep the credential of
 * `registered` and present it on every reconnect, reconnect after the agent's own jittered backoff
 * (agent/connection-timing.ts `reconnectDelay`), re-send their unacknowledged results after
 * registering again (agent/outbox.ts), and refuse an instruction id they already ran.
 *   connect → connected {agents}; storm {drift, salt} → stormed; stats → stats {...}.
 */
import pino from 'pino';
import WebSocket from 'ws';
import { RESEND_AFTER_MS } from '../agent/agent.js';
import { BATCH_DEFAULTS } from '../agent/connection.js';
import { reconnectDelay } from '../agent/connection-timing.js';
import { FrameBatcher } from '../agent/frame-batcher.js';
import { Outbox } from '../agent/outbox.js';
import { readUpgradeRefusal } from '../agent/upgrade-refusal.js';
import { AGENT_FEATURES, type AgentResult, PROTOCOL_VERSION, type RunMessage } from '../shared/protocol.js';
import { isDrifted } from './sim-answer.js';
import { answerRun, counters } from './storm-answer.js';

type Msg = Record<string, unknown> & { type: string };
const send = (m: Record<string, unknown>) => process.send?.(m);
const quiet = pino({ level: 'silent' });
/** As the agent (agent/connection.ts): no `registered` within this long → terminate and retry. */
const REGISTER_TIMEOUT_MS = 10_000;

/** One simulated agent: the pieces of the real agent's connection loop that a storm exercises. */
interface Sim {
  name: string;
  ws: WebSocket | null;
  credential: string | null;
  attempt: number;
  registered: boolean;
  refused: boolean;
  /** Registered since the storm began (on which gateway), and checked since then. */
  stormRegistered: boolean;
  stormChecked: boolean;
  outbox: Outbox;
  batcher: FrameBatcher | null;
  seen: Set<string>;
  /** Tasks drifted by the storm and not yet applied; applies per task this storm. */
  drifted: Set<string>;
  applies: Map<string, number>;
  timers: NodeJS.Timeout[];
  /** Resolves the initial connect's wait once registered (a failed first attempt retries). */
  onFirst: (() => void) | null;
}

export async function runStormSims(opts: {
  url: string;
  token: string;
  count: number;
  offset: number;
  tasks: number;
}): Promise<void> {
  let c = counters('connect');
  const sims: Sim[] = [];
  const url = `${opts.url.replace(/\/+$/, '')}/agent`;

  const keep = (sim: Sim, result: AgentResult) => {
    sim.outbox.add(result);
    sim.batcher?.add(JSON.stringify(result));
    c.results++;
  };

  const onRun = (sim: Sim, run: RunMessage) => {
    c.runs++;
    if (!sim.stormChecked && sim.stormRegistered) {
      sim.stormChecked = true;
      c.agentsChecked++;
      c.lastCheckedAt = Date.now();
    }
    const repeat = sim.seen.has(run.instruction_id);
    sim.seen.add(run.instruction_id);
    if (repeat) c.duplicates++;
    const applied = answerRun(run, repeat, sim.drifted, {
      receipt: (text) => sim.batcher?.add(text),
      result: (r) => keep(sim, r),
    });
    for (const task of applied) {
      const n = (sim.applies.get(task) ?? 0) + 1;
      sim.applies.set(task, n);
      c.applies++;
      if (n > 1) c.doubleApplies++;
    }
    sim.batcher?.flush();
  };

  const clearTimers = (sim: Sim) => {
    for (const t of sim.timers.splice(0)) clearTimeout(t);
  };

  const onRegistered = (sim: Sim, ws: WebSocket, msg: Record<string, unknown>) => {
    clearTimers(sim);
    sim.registered = true;
    sim.attempt = 0;
    if (typeof msg.credential === 'string') sim.credential = msg.credential;
    const now = Date.now();
    c.registrations++;
    const gw = String(msg.gateway_id);
    c.byGateway[gw] = (c.byGateway[gw] ?? 0) + 1;
    c.firstRegisteredAt ??= now;
    c.lastRegisteredAt = now;
    if (!sim.stormRegistered) {
      sim.stormRegistered = true;
      c.agentsRegistered++;
    }
    const every = Number(msg.heartbeat_interval_ms ?? 10_000);
    const beat = () => {
      if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"heartbeat","running":[]}');
    };
    sim.timers.push(
      setTimeout(() => {
        beat();
        sim.timers.push(setInterval(beat, every));
      }, Math.random() * every),
    );
    // As the agent after a reconnect: everything still unacknowledged goes again, in order.
    const pending = sim.outbox.pending();
    if (pending.length > 0) {
      for (const r of pending) sim.batcher?.add(JSON.stringify(r));
      sim.outbox.markAllSent(now);
      c.resent += pending.length;
      sim.batcher?.flush();
    }
  };

  const connect = (sim: Sim) => {
    sim.refused = false;
    const presented = sim.credential;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${presented ?? opts.token}` },
      perMessageDeflate: false,
      handshakeTimeout: REGISTER_TIMEOUT_MS,
      // Remote hosts' CPU is not the control plane's (see bench/reconcile-sims.ts).
      generateMask: (mask: Buffer) => mask.fill(0),
      skipUTF8Validation: true,
    });
    sim.ws = ws;
    sim.batcher = new FrameBatcher({ ...BATCH_DEFAULTS, write: (frame) => ws.send(frame) });
    let closedOnce = false;
    ws.on('unexpected-response', (_req, res) =>
      readUpgradeRefusal(res, (status, code) => {
        const k = `${status}${code ? ` ${code}` : ''}`;
        c.refusedUpgrades[k] = (c.refusedUpgrades[k] ?? 0) + 1;
        if (presented !== null && status === 401 && code === 'credential_rejected') sim.credential = null;
        else if (status === 401 || status === 403) sim.refused = true;
        ws.terminate();
      }),
    );
    ws.on('error', () => {});
    ws.once('open', () => {
      ws.send(
        JSON.stringify({
          type: 'register',
          v: PROTOCOL_VERSION,
          name: sim.name,
          labels: { role: 'bench', zone: String(sims.indexOf(sim) % 4) },
          agent_version: 'bench',
          executors: ['shell'],
          running: [],
          features: [...AGENT_FEATURES],
        }),
      );
      sim.timers.push(setTimeout(() => ws.terminate(), REGISTER_TIMEOUT_MS));
    });
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as Msg & { result_ids?: string[] };
      if (msg.type === 'registered') {
        onRegistered(sim, ws, msg);
        // The first registration of the first connect, however many attempts it took.
        const first = sim.onFirst;
        sim.onFirst = null;
        first?.();
      } else if (msg.type === 'run') onRun(sim, msg as unknown as RunMessage);
      else if (msg.type === 'result_ack') c.acked += sim.outbox.ack(msg.result_ids ?? []);
      else if (msg.type === 'result_retry') sim.outbox.retryAt(msg.result_ids ?? [], Date.now());
      else if (msg.type === 'refused') {
        c.refusals++;
        sim.refused = true;
      }
    });
    ws.on('close', (code) => {
      if (closedOnce || sim.ws !== ws) return;
      closedOnce = true;
      c.closes++;
      c.closeCodes[code] = (c.closeCodes[code] ?? 0) + 1;
      clearTimers(sim);
      sim.ws = null;
      sim.batcher = null;
      if (sim.registered) sim.attempt = 0;
      sim.registered = false;
      const next = reconnectDelay({}, { refused: sim.refused, code, attempt: sim.attempt });
      sim.attempt = next.attempt;
      sim.timers.push(setTimeout(() => connect(sim), next.delayMs));
    });
  };

  for (let i = 0; i < opts.count; i++) {
    sims.push({
      name: `sim-${String(opts.offset + i).padStart(6, '0')}`,
      ws: null,
      credential: null,
      attempt: 0,
      registered: false,
      refused: false,
      stormRegistered: false,
      stormChecked: false,
      outbox: new Outbox(quiet),
      batcher: null,
      seen: new Set(),
      drifted: new Set(),
      applies: new Map(),
      timers: [],
      onFirst: null,
    });
  }
  // Unacknowledged results go again after RESEND_AFTER_MS, as the agent's outbox does.
  setInterval(() => {
    for (const sim of sims) {
      if (!sim.registered) continue;
      const due = sim.outbox.takeOverdue(Date.now(), RESEND_AFTER_MS);
      for (const r of due) sim.batcher?.add(JSON.stringify(r));
      sim.batcher?.flush();
      c.resent += due.length;
    }
  }, RESEND_AFTER_MS / 3).unref();

  const connectAll = async () => {
    let next = 0;
    const worker = async () => {
      while (next < sims.length) {
        const sim = sims[next++] as Sim;
        await new Promise<void>((resolve) => {
          sim.onFirst = resolve;
          connect(sim);
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(200, sims.length) }, worker));
    send({ type: 'connected', agents: sims.filter((s) => s.registered).length });
  };

  process.on('message', (m: Msg) => {
    if (m.type === 'connect') void connectAll();
    else if (m.type === 'storm') {
      c = counters(String(m.name ?? 'storm'));
      const drift = Number(m.drift ?? 0);
      for (const sim of sims) {
        sim.stormRegistered = false;
        sim.stormChecked = false;
        sim.applies.clear();
        sim.drifted.clear();
        for (let t = 0; t < opts.tasks; t++) {
          const task = `bench_${String(t).padStart(2, '0')}`;
          if (isDrifted(String(m.salt), drift, sim.name, task)) sim.drifted.add(task);
        }
      }
      send({ type: 'stormed' });
    } else if (m.type === 'stats') {
      const pending = sims.reduce((s, sim) => s + sim.outbox.size, 0);
      const dropped = sims.reduce((s, sim) => s + sim.outbox.droppedTotal, 0);
      const connected = sims.filter((s) => s.registered).length;
      const unchecked = sims
        .filter((s) => !s.stormChecked)
        .slice(0, 5)
        .map((s) => s.name);
      send({ type: 'stats', ...c, pending, dropped, connected, unchecked });
    }
  });
  process.once('disconnect', () => {
    for (const sim of sims) {
      clearTimers(sim);
      sim.ws?.terminate();
    }
    process.exit(0);
  });
  send({ type: 'loaded' });
}
