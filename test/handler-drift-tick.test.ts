/**
 * The drift tick: each agent checked once per interval, at its own slot.
 */
import t from 'tap';
import { type AgentJob, driftTickHandler } from '../reconciler/handlers/fanout.js';
import { driftCheckOffset } from '../shared/plan.js';

// ---- drift tick ----------------------------------------------------------------------------------

const INTERVAL = 60_000;

function tickWorld(names: string[]) {
  const enqueued: AgentJob[] = [];
  let listed = 0;
  const deps = {
    agentNames: async () => {
      listed += 1;
      return names;
    },
    enqueueAgents: async (jobs: AgentJob[]) => {
      enqueued.push(...jobs);
    },
    pollIntervalMs: INTERVAL,
  };
  return {
    enqueued,
    listed: () => listed,
    tick: (start: number, end: number, now: number) => driftTickHandler(start, end, now, deps),
  };
}

/** Whether the agent's slot (its offset within every interval) falls in [start, end). */
function slotIn(name: string, start: number, end: number): boolean {
  const offset = driftCheckOffset(name, INTERVAL);
  for (let k = Math.floor(start / INTERVAL) - 1; k * INTERVAL < end; k++) {
    const slot = k * INTERVAL + offset;
    if (slot >= start && slot < end) return true;
  }
  return false;
}

const manyNames = (n: number) => Array.from({ length: n }, (_, i) => `host-${i.toString(36)}.dc${i % 7}`);

/** A small deterministic PRNG so the property cases are the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

t.test('driftTickHandler', async (t) => {
  t.test('agents whose slot falls in [start, end) are delayed to their slot', async (t) => {
    const names = manyNames(300);
    const w = tickWorld(names);
    const start = 1_741_875_721_234;
    const end = start + 5000;
    const now = start - 250;
    const result = await w.tick(start, end, now);
    const expected = names.filter((n) => slotIn(n, start, end));
    t.ok(expected.length > 5, `some agents fall in the window (${expected.length})`);
    t.same(
      w.enqueued.map((j) => j.data.agent),
      expected,
    );
    t.same(result, { agents: expected.length });
    for (const job of w.enqueued) {
      const slot = now + job.delayMs;
      t.equal(((slot % INTERVAL) + INTERVAL) % INTERVAL, driftCheckOffset(job.data.agent, INTERVAL));
      t.ok(slot >= start && slot < end, `${job.data.agent} at its slot`);
      t.same(job.data, {
        agent: job.data.agent,
        trigger: 'drift_check',
        run_id: null,
        tasks: null,
        retry: 0,
      });
    }
  });

  t.test('a late tick: slots already past run at once', async (t) => {
    const names = manyNames(300);
    const w = tickWorld(names);
    const start = 1_741_875_720_000;
    const now = start + 3000;
    await w.tick(start, start + 6000, now);
    for (const job of w.enqueued) {
      const slot =
        start + ((driftCheckOffset(job.data.agent, INTERVAL) - (start % INTERVAL) + INTERVAL) % INTERVAL);
      t.equal(job.delayMs, Math.max(0, slot - now), job.data.agent);
    }
    t.ok(
      w.enqueued.some((j) => j.delayMs === 0) && w.enqueued.some((j) => j.delayMs > 0),
      'both past and future slots in the window',
    );
  });

  t.test('adjacent windows check every agent exactly once per interval', async (t) => {
    const names = manyNames(2000);
    const random = prng(42);
    for (let round = 0; round < 20; round++) {
      const w = tickWorld(names);
      const start = 1_741_875_000_000 + Math.floor(random() * 10 * INTERVAL);
      const cut = start + Math.floor(random() * INTERVAL);
      await w.tick(start, cut, start);
      await w.tick(cut, start + INTERVAL, cut);
      const seen = new Map<string, number>();
      for (const j of w.enqueued) seen.set(j.data.agent, (seen.get(j.data.agent) ?? 0) + 1);
      const wrong = names.filter((n) => seen.get(n) !== 1);
      t.same(wrong, [], `round ${round}: [${start}, ${cut}) + [${cut}, +interval)`);
    }
    // Twelve ticks of a twelfth each, as the schedule runs them.
    const w = tickWorld(names);
    const start = 1_741_875_700_000;
    const step = INTERVAL / 12;
    for (let i = 0; i < 12; i++) await w.tick(start + i * step, start + (i + 1) * step, start + i * step);
    t.equal(w.enqueued.length, names.length);
    t.equal(new Set(w.enqueued.map((j) => j.data.agent)).size, names.length);
  });

  t.test('a window longer than the interval is capped to one interval', async (t) => {
    const names = manyNames(500);
    const w = tickWorld(names);
    const start = 1_741_875_720_000;
    await w.tick(start, start + 5 * INTERVAL, start);
    t.equal(w.enqueued.length, names.length, 'every agent once, not once per interval');
    t.ok(w.enqueued.every((j) => j.delayMs >= 0 && j.delayMs < INTERVAL));
  });

  t.test('an empty or inverted window enqueues nothing', async (t) => {
    const w = tickWorld(manyNames(50));
    t.same(await w.tick(1000, 1000, 1000), { agents: 0 });
    t.same(await w.tick(2000, 1000, 1000), { agents: 0 });
    t.same(w.enqueued, []);
    t.equal(w.listed(), 0, 'the agent index is not even read');
  });
});
