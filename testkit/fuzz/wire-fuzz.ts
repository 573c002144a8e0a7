/**
 * The wire fuzzer: generated and mutated frames against a live `fluke gateway` child process, in
 * every connection phase, with bounded concurrency. Two runs: the frames the protocol says must
 * be refused, watched by MONITOR (they must cause no Redis write), then the rest. Afterwards the
 * gateway must be alive, free of uncaught errors, and still register a well-behaved agent.
 */
import { issueInstructionId } from '../../shared/identity/instruction-tag.js';
import { Keys } from '../../shared/keys.js';
import { AGENT_TOKEN, waitFor } from '../system.js';
import { AGENT_MESSAGE_TYPES, brokenTypes, validFrame } from './frames.js';
import { FUZZ_IDENTITY_KEY, type GatewayChild, startGatewayChild } from './gateway-child.js';
import { type FuzzFrame, mutateFrame } from './mutate.js';
import { type FuzzPhase, type Judgement, judge, PHASES } from './oracle.js';
import { rng } from './prng.js';
import { unexplained, WriteMonitor, type WriteRecord } from './redis-writes.js';
import { classify, Tally } from './tally.js';
import { registerFrame, runCase } from './wire-client.js';

/** The gateway's default frame limit (GatewayLimits.maxPayloadBytes). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

export interface WireFuzzOptions {
  frames: number;
  seed: number;
  /** Sockets open at once (default 16). */
  concurrency?: number;
  /** Per case: connect, set up, send, answer (default 20 s: the machine may be loaded). */
  caseTimeoutMs?: number;
  /** Share of frames made near the 1 MiB and 2 MiB limits (default 0.004). */
  oversizedShare?: number;
  log?: (line: string) => void;
}

export interface WireFuzzReport {
  seed: number;
  frames: number;
  tally: Tally;
  refusedRun: {
    frames: number;
    writes: number;
    unexplained: string[];
    controlShapes: number;
    /** Unexplained writes of one valid output frame, measured the same way (must be > 0). */
    probeWrites: number;
  };
  acceptedRun: { frames: number; footprintKeys: number; outputStoredForUnknown: number };
  gateway: {
    alive: boolean;
    exit: number | string | null;
    crashLines: string[];
    errorLines: string[];
    rssStartBytes: number;
    rssPeakBytes: number;
    rssEndBytes: number;
    registersAfter: boolean;
  };
  brokenTypes: string[];
  seconds: number;
}

/**
 * A case keeps its seed; its frame only when small: large frames (some are 2 MiB) are made again
 * from the seed when sent.
 */
interface Case {
  i: number;
  phase: FuzzPhase;
  seed: number;
  type: string;
  expect: Judgement['expect'];
  frame: FuzzFrame | null;
}

const KEEP_BYTES = 16 * 1024;

function frameOf(c: Case, o: WireFuzzOptions): FuzzFrame {
  if (c.frame) return c.frame;
  const r = rng(c.seed);
  return mutateFrame(r, c.type, `fz-c${c.i}`, {
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    oversizedShare: o.oversizedShare ?? 0.004,
  });
}

function makeCases(o: WireFuzzOptions): Case[] {
  const r = rng(o.seed);
  const cases: Case[] = [];
  for (let i = 0; i < o.frames; i++) {
    const c: Case = {
      i,
      phase: r.pick(PHASES),
      seed: r.int(0xffffffff),
      type: r.pick(AGENT_MESSAGE_TYPES),
      expect: 'refuse',
      frame: null,
    };
    const frame = frameOf(c, o);
    c.expect = judge(frame, c.phase, MAX_PAYLOAD_BYTES).expect;
    if (frame.bytes.length <= KEEP_BYTES) c.frame = frame;
    cases.push(c);
  }
  return cases;
}

/** Runs `cases` with bounded concurrency; stops early once the gateway is gone. */
async function runAll(
  gw: GatewayChild,
  cases: Case[],
  o: WireFuzzOptions,
  tally: Tally,
  /** The output frames taken: their execution, phase and mutation. */
  outputs: TakenOutput[],
  peak: { rss: number },
): Promise<void> {
  let next = 0;
  const width = o.concurrency ?? 16;
  const started = Date.now();
  const worker = async (slot: number) => {
    while (next < cases.length && gw.alive()) {
      const c = cases[next++] as Case;
      const frame = frameOf(c, o);
      const judgement = judge(frame, c.phase, MAX_PAYLOAD_BYTES);
      const outcome = await runCase(c.phase, frame, {
        url: gw.url,
        token: AGENT_TOKEN,
        agent: `fz-s${slot}`,
        timeoutMs: o.caseTimeoutMs ?? 20_000,
      });
      const overTwice = frame.bytes.length > 2 * MAX_PAYLOAD_BYTES;
      let { verdict, why } = classify(judgement, outcome, overTwice);
      if (!gw.alive()) verdict = 'crashed';
      const code = outcome.kind === 'closed' ? String(outcome.code) : outcome.kind;
      tally.add(c.phase, frame.type, frame.mutation, verdict, code);
      if (verdict === 'accepted' && judgement.message?.type === 'output')
        outputs.push({ execution: judgement.message.execution_id, phase: c.phase, mutation: frame.mutation });
      if (verdict === 'wrong') tally.wrong(why);
      if (verdict !== 'accepted' && verdict !== 'refused')
        tally.sample({
          verdict,
          phase: c.phase,
          type: frame.type,
          mutation: frame.mutation,
          why: why || judgement.why,
          outcome: `${outcome.kind} ${outcome.code} ${outcome.reason}`.trim(),
          frame: frame.bytes.length > 4096 ? `(${frame.bytes.length} bytes)` : frame.bytes.toString('base64'),
          binary: frame.binary,
        });
      if (c.i % 1000 === 0) {
        peak.rss = Math.max(peak.rss, gw.rss());
        o.log?.(`  case ${c.i}: ${tally.total.tried} done, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
    }
  };
  await Promise.all(Array.from({ length: width }, (_, slot) => worker(slot)));
}

/** Well-behaved sessions (register, registered, leave) and the gateway idle: writes that explain. */
async function controlShapes(gw: GatewayChild, monitor: WriteMonitor): Promise<Set<string>> {
  const keys = new Keys(gw.redis.prefix);
  const shapes = new Set<string>();
  const deadline = Date.now() + 60_000;
  // Until the gateway's periodic announce has been seen at least twice.
  let announces = 0;
  while (announces < 2 && Date.now() < deadline) {
    for (let i = 0; i < 4; i++) {
      // A register and nothing else: the session's own writes, none of a message it sends.
      const register: FuzzFrame = {
        type: 'register',
        mutation: 'valid',
        bytes: Buffer.from(registerFrame(`fz-s${i}`)),
        binary: false,
      };
      const o = await runCase('new', register, {
        url: gw.url,
        token: AGENT_TOKEN,
        agent: `fz-s${i}`,
        timeoutMs: 20_000,
      });
      if (o.kind !== 'accepted' || !o.registered)
        throw new Error(`control session failed: ${JSON.stringify(o)}`);
    }
    await waitDeregistered(gw);
    const writes = await monitor.take();
    for (const w of writes) shapes.add(w.shape);
    announces += writes.filter((w) => w.args.includes(keys.gateways())).length;
  }
  return shapes;
}

function heartbeatFrame(): FuzzFrame {
  return {
    type: 'heartbeat',
    mutation: 'valid',
    bytes: Buffer.from('{"type":"heartbeat","running":[]}'),
    binary: false,
  };
}

/**
 * The positive control: a task result for an instruction really issued to the agent (an id tagged
 * with the child's identity key), which the gateway must forward to the results queue.
 */
function issuedResultFrame(agent: string): FuzzFrame {
  const instruction = issueInstructionId(FUZZ_IDENTITY_KEY, agent, 'fz-probe');
  const result = {
    ...validFrame(rng(2), 'task_result', agent),
    instruction_id: instruction,
    execution_id: `${instruction}.0`,
    result_id: 'fz-probe-result',
  };
  return {
    type: 'task_result',
    mutation: 'valid',
    bytes: Buffer.from(JSON.stringify(result)),
    binary: false,
  };
}

/** Writes the monitor sees (beyond the control sessions') until one shows up, or 30 s pass. */
async function probeWritesSeen(monitor: WriteMonitor, control: Set<string>): Promise<number> {
  const seen: WriteRecord[] = [];
  await waitFor(
    "the probe's writes",
    async () => {
      seen.push(...(await monitor.take()));
      return unexplained(seen, control).length;
    },
    (n) => n > 0,
    30_000,
  ).catch(() => 0);
  return unexplained(seen, control).length;
}

/** Every fuzz session has left the registry's index (their deregisters are in). */
async function waitDeregistered(gw: GatewayChild): Promise<void> {
  const redis = gw.redis.client();
  const key = new Keys(gw.redis.prefix).agentIndex();
  try {
    await waitFor(
      'every fuzz session to leave the registry',
      async () => (await redis.zrange(key, '0', '-1')).filter((n) => n.startsWith('fz-s')),
      (left) => left.length === 0,
      60_000,
    );
  } finally {
    redis.disconnect();
  }
}

interface TakenOutput {
  execution: string;
  phase: FuzzPhase;
  mutation: string;
}

/**
 * The taken output frames whose line landed in Redis (a replay buffer): nobody dispatched these
 * executions, so each is re-counted from accepted to accepted wrongly.
 */
async function outputStored(gw: GatewayChild, taken: TakenOutput[], tally: Tally): Promise<number> {
  const keys = new Keys(gw.redis.prefix);
  const redis = gw.redis.client();
  let stored = 0;
  try {
    for (const o of taken) {
      if ((await redis.exists(keys.outputBuffer(o.execution))) === 0) continue;
      stored++;
      tally.move(o.phase, 'output', o.mutation, 'accepted', 'wrong');
      tally.wrong('output for an execution nobody dispatched was stored');
    }
  } finally {
    redis.disconnect();
  }
  return stored;
}

export async function runWireFuzz(o: WireFuzzOptions): Promise<WireFuzzReport> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  log(`wire fuzz: seed ${o.seed} (FLUKE_FUZZ_SEED=${o.seed} reproduces), ${o.frames} frames`);
  const cases = makeCases(o);
  const refusedCases = cases.filter((c) => c.expect === 'refuse');
  const otherCases = cases.filter((c) => c.expect !== 'refuse');
  const gw = await startGatewayChild();
  const tally = new Tally();
  const peak = { rss: gw.rss() };
  const rssStart = peak.rss;
  const monitorClient = gw.redis.client();
  const monitor = new WriteMonitor(monitorClient, gw.redis.port);
  try {
    await monitor.start();
    const control = await controlShapes(gw, monitor);
    log(`refused run: ${refusedCases.length} frames (control: ${control.size} write shapes)`);
    const outputs: TakenOutput[] = [];
    await runAll(gw, refusedCases, o, tally, outputs, peak);
    if (gw.alive()) await waitDeregistered(gw);
    const refusedWrites = await monitor.take();
    const bad = unexplained(refusedWrites, control);
    // The measurement's positive control: one frame that does write must show up.
    await runCase('registered', issuedResultFrame('fz-s0'), {
      url: gw.url,
      token: AGENT_TOKEN,
      agent: 'fz-s0',
      timeoutMs: 30_000,
    });
    if (gw.alive()) await waitDeregistered(gw);
    const probeWrites = await probeWritesSeen(monitor, control);
    monitor.stop();
    log(`accepted run: ${otherCases.length} frames`);
    await runAll(gw, otherCases, o, tally, outputs, peak);
    const afterWrites = gw.alive() ? await acceptedFootprint(gw) : 0;
    const stored = gw.alive() ? await outputStored(gw, outputs, tally) : 0;
    const healthy = gw.alive()
      ? await runCase('registered', heartbeatFrame(), {
          url: gw.url,
          token: AGENT_TOKEN,
          agent: 'fz-after',
          timeoutMs: 30_000,
        })
      : null;
    peak.rss = Math.max(peak.rss, gw.rss());
    return {
      seed: o.seed,
      frames: o.frames,
      tally,
      refusedRun: {
        frames: refusedCases.length,
        writes: refusedWrites.length,
        unexplained: [
          ...new Set(bad.map((w) => `${w.command} ${w.args.slice(0, 3).join(' ')}`.slice(0, 200))),
        ],
        controlShapes: control.size,
        probeWrites,
      },
      acceptedRun: { frames: otherCases.length, footprintKeys: afterWrites, outputStoredForUnknown: stored },
      gateway: {
        alive: gw.alive(),
        exit: gw.exitCode(),
        crashLines: gw.crashLines(),
        errorLines: gw.errorLines().slice(0, 20),
        rssStartBytes: rssStart,
        rssPeakBytes: peak.rss,
        rssEndBytes: gw.rss(),
        registersAfter: healthy?.kind === 'accepted',
      },
      brokenTypes: [...brokenTypes],
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    monitor.stop();
    await gw.stop();
  }
}

/**
 * What the accepted run left: output buffers and results jobs, which no control session writes (a
 * positive control: the write measurement of the refused run would have seen these).
 */
async function acceptedFootprint(gw: GatewayChild): Promise<number> {
  // The accepted run is not monitored (MONITOR is costly under load); its keys are counted instead.
  const keys = new Keys(gw.redis.prefix);
  const redis = gw.redis.client();
  try {
    const all = await redis.keys('*');
    const outputs = all.filter((k) => k.startsWith(keys.outputBuffer('').slice(0, -1))).length;
    const results = all.filter((k) => k.includes(':results:') && /:\d+$/.test(k)).length;
    return outputs + results;
  } finally {
    redis.disconnect();
  }
}
