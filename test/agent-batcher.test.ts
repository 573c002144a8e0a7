/** FrameBatcher (pure): which receipts and results leave together, and when. */
import t from 'tap';
import { FrameBatcher, type FrameBatcherOptions } from '../agent/frame-batcher.js';

/** A batcher on a hand-driven clock: `fire()` runs the pending window timer. */
function setup(opts: Partial<FrameBatcherOptions> = {}) {
  const frames: string[] = [];
  let pending: (() => void) | null = null;
  let timers = 0;
  const b = new FrameBatcher({
    windowMs: 10,
    maxItems: 500,
    maxBytes: 256 * 1024,
    write: (f) => frames.push(f),
    setTimer: (fn) => {
      timers++;
      pending = fn;
      return fn;
    },
    clearTimer: (h) => {
      if (pending === h) pending = null;
    },
    ...opts,
  });
  return {
    b,
    frames,
    get timers() {
      return timers;
    },
    get armed() {
      return pending !== null;
    },
    fire() {
      const fn = pending;
      pending = null;
      fn?.();
    },
  };
}

const item = (i: number, pad = 0) =>
  JSON.stringify({ type: 'task_result', result_id: `r${i}`, pad: 'x'.repeat(pad) });
const decode = (frame: string) =>
  JSON.parse(frame) as { type: string; messages?: Array<{ result_id: string }> };

t.test('what is queued within one window leaves as one results frame, in order', async (t) => {
  const s = setup();
  for (let i = 0; i < 5; i++) s.b.add(item(i));
  t.same(s.frames, [], 'nothing before the window ends');
  t.equal(s.timers, 1, 'one timer for the window');
  s.fire();
  t.equal(s.frames.length, 1);
  const frame = decode(s.frames[0]!);
  t.equal(frame.type, 'results');
  t.same(
    frame.messages?.map((m) => m.result_id),
    ['r0', 'r1', 'r2', 'r3', 'r4'],
  );
  t.equal(s.b.size, 0);
});

t.test('a single message leaves as itself, without the wrapper', async (t) => {
  const s = setup();
  s.b.add(item(7));
  s.fire();
  t.same(s.frames, [item(7)]);
});

t.test('a full batch leaves at once; the next one waits for its own window', async (t) => {
  const s = setup({ maxItems: 3 });
  for (let i = 0; i < 4; i++) s.b.add(item(i));
  t.equal(s.frames.length, 1, 'flushed at 3 items');
  t.same(
    decode(s.frames[0]!).messages?.map((m) => m.result_id),
    ['r0', 'r1', 'r2'],
  );
  t.ok(s.armed, 'the fourth waits');
  s.fire();
  t.same(s.frames[1], item(3));
});

t.test('maxItems is capped at what the gateway accepts in one frame', async (t) => {
  const s = setup({ maxItems: 5000 });
  for (let i = 0; i < 1000; i++) s.b.add(item(i));
  t.equal(s.frames.length, 1);
  t.equal(decode(s.frames[0]!).messages?.length, 1000);
});

t.test('an item that would pass maxBytes starts the next batch', async (t) => {
  const one = item(0, 100);
  const size = Buffer.byteLength(one) + 1;
  const s = setup({ maxBytes: size * 2 + 10 });
  s.b.add(item(0, 100));
  s.b.add(item(1, 100));
  t.same(s.frames, [], 'two fit');
  s.b.add(item(2, 100));
  t.equal(s.frames.length, 1, 'the third would not: the first two left');
  t.equal(decode(s.frames[0]!).messages?.length, 2);
  s.b.add(item(3, 10_000));
  t.equal(s.frames.length, 3, 'an item alone above maxBytes goes at once, alone, after the one before');
  t.same(s.frames[1], item(2, 100));
  t.same(s.frames[2], item(3, 10_000));
  t.equal(s.b.size, 0);
  // Multibyte text counts in bytes, not characters.
  const wide = setup({ maxBytes: 100 });
  wide.b.add(JSON.stringify({ type: 'x', t: 'é'.repeat(25) }));
  wide.b.add(JSON.stringify({ type: 'x', t: 'é'.repeat(25) }));
  t.equal(wide.frames.length, 1, '2 × 25 two-byte characters pass 100 bytes (not 100 characters)');
});

t.test('flush sends now; clear drops the batch and its timer', async (t) => {
  const s = setup();
  s.b.add(item(0));
  s.b.add(item(1));
  s.b.flush();
  t.equal(s.frames.length, 1);
  t.notOk(s.armed, 'the window timer is cancelled');
  s.b.flush();
  t.equal(s.frames.length, 1, 'nothing to flush: no frame');
  s.b.add(item(2));
  s.b.clear();
  t.notOk(s.armed);
  s.fire();
  t.equal(s.frames.length, 1, 'cleared: never written');
  t.equal(s.b.size, 0);
});

t.test('a zero window sends every message at once', async (t) => {
  const s = setup({ windowMs: 0 });
  s.b.add(item(0));
  s.b.add(item(1));
  t.same(s.frames, [item(0), item(1)]);
  t.equal(s.timers, 0);
});
