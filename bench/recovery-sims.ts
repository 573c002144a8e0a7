/**
 * A simulator process of bench/recovery.ts: `count` SimAgents (recovery-agent.ts) spread over the
 * gateway addresses. Parent ⇄ child over the fork IPC channel:
 *   connect → connected {agents}; phase {name, drift, since} → phased;
 *   stats {since} → stats {...}; latest → latest {executions}.
 */
import { RESEND_AFTER_MS } from '../agent/agent.js';
import { type Phase, SimAgent, type SimCounters } from './recovery-agent.js';

type Msg = Record<string, unknown> & { type: string };
const send = (m: Record<string, unknown>) => process.send?.(m);

export interface SimsStats {
  agents: number;
  registeredNow: number;
  /** Agents whose socket closed at or after `since`. */
  disrupted: number;
  /** …and that are registered again on a newer socket. */
  reRegistered: number;
  /** Agents that ran an instruction at or after `since` and have nothing left unacknowledged. */
  checked: number;
  /** Disrupted agents that did so. */
  checkedDisrupted: number;
  /** Results still waiting for an ack, over all agents. */
  unacked: number;
  /** Up to 5 agents not yet checked (for a stuck run's log). */
  missing: string[];
  counters: SimCounters;
}

export function newCounters(): SimCounters {
  return {
    results: 0,
    acked: 0,
    resentOnRegister: 0,
    duplicates: 0,
    busy: 0,
    doubleApplies: 0,
    reApplies: 0,
    repeatChecks: 0,
    reconnects: 0,
    refusals: 0,
    credentialRejected: 0,
  };
}

/** Every count 0, no agent missing. */
export function emptySimsStats(): SimsStats {
  return {
    agents: 0,
    registeredNow: 0,
    disrupted: 0,
    reRegistered: 0,
    checked: 0,
    checkedDisrupted: 0,
    unacked: 0,
    missing: [],
    counters: newCounters(),
  };
}

export function simStatsOf(agents: readonly SimAgent[], since: number, counters: SimCounters): SimsStats {
  const s: SimsStats = { ...emptySimsStats(), agents: agents.length, counters: { ...counters } };
  for (const a of agents) {
    const disrupted = a.closedAt >= since;
    const checked = a.lastRunAt >= since && a.outbox.size === 0;
    if (a.registered) s.registeredNow++;
    if (disrupted) s.disrupted++;
    if (disrupted && a.registered && a.registeredAt > a.closedAt) s.reRegistered++;
    if (checked) s.checked++;
    else if (s.missing.length < 5) s.missing.push(a.name);
    if (checked && disrupted) s.checkedDisrupted++;
    s.unacked += a.outbox.size;
  }
  return s;
}

export async function runRecoverySims(opts: {
  urls: string[];
  token: string;
  count: number;
  offset: number;
  proc: number;
}): Promise<void> {
  const counters = newCounters();
  let phase: Phase = { name: 'connect', drift: 0, since: 0 };
  let seq = 0;
  const nonce = `${opts.proc}${Date.now().toString(36)}`;
  const agents: SimAgent[] = [];
  for (let i = 0; i < opts.count; i++) {
    const index = opts.offset + i;
    agents.push(
      new SimAgent({
        name: `sim-${String(index).padStart(6, '0')}`,
        index,
        urls: opts.urls,
        token: opts.token,
        counters,
        phase: () => phase,
        nextId: () => `r${nonce}-${(seq++).toString(36)}`,
      }),
    );
  }
  const resend = setInterval(() => {
    for (const a of agents) a.resendDue();
  }, RESEND_AFTER_MS / 3);

  const connectAll = async () => {
    let next = 0;
    const worker = async () => {
      while (next < agents.length) await agents[next++]?.start();
    };
    await Promise.all(Array.from({ length: Math.min(200, agents.length) }, worker));
    send({ type: 'connected', agents: agents.filter((a) => a.registered).length });
  };

  process.on('message', (m: Msg) => {
    if (m.type === 'connect') {
      connectAll().catch((err: unknown) => send({ type: 'failed', error: String(err) }));
    } else if (m.type === 'phase') {
      phase = { name: String(m.name), drift: Number(m.drift ?? 0), since: Number(m.since ?? Date.now()) };
      send({ type: 'phased' });
    } else if (m.type === 'stats') {
      send({ type: 'stats', ...simStatsOf(agents, Number(m.since ?? 0), counters) });
    } else if (m.type === 'latest') {
      const executions: Record<string, Record<string, string>> = {};
      for (const a of agents) executions[a.name] = Object.fromEntries(a.latest);
      send({ type: 'latest', executions });
    }
  });
  process.once('disconnect', () => {
    clearInterval(resend);
    for (const a of agents) a.stop();
    process.exit(0);
  });
  send({ type: 'loaded' });
}
