/**
 * The wire fuzzer at suite size against a live `fluke gateway` process and a private Redis:
 * generated and mutated frames of every agent message type in every connection phase. 0 crashes,
 * no answer missing, no frame the protocol refuses taken, 0 Redis writes caused by refused frames,
 * and the gateway still registers an agent afterwards. FLUKE_FUZZ_FRAMES sets the count (default
 * 5,000; `bench/fuzz.ts` runs 100,000), FLUKE_FUZZ_SEED the seed (printed, so a failure reproduces).
 */
import t from 'tap';
import type { AgentMessage } from '../shared/protocol.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { AGENT_MESSAGE_TYPES, validFrame } from '../testkit/fuzz/frames.js';
import type { FuzzFrame } from '../testkit/fuzz/mutate.js';
import { judge, wrongRegistration } from '../testkit/fuzz/oracle.js';
import { countFromEnv, rng, seedFromEnv } from '../testkit/fuzz/prng.js';
import { shapeOf } from '../testkit/fuzz/redis-writes.js';
import { classify, renderTally } from '../testkit/fuzz/tally.js';
import { MAX_PAYLOAD_BYTES, runWireFuzz } from '../testkit/fuzz/wire-fuzz.js';

const seed = seedFromEnv();
const frames = countFromEnv('FLUKE_FUZZ_FRAMES', 5000);
const text = (v: unknown): FuzzFrame => ({
  type: 'x',
  mutation: 'valid',
  bytes: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)),
  binary: false,
});

t.test('the oracle and the classes the fuzzer counts by', async (t) => {
  const r = rng(1);
  t.ok(AGENT_MESSAGE_TYPES.length >= 8, `every agent message type: ${AGENT_MESSAGE_TYPES.join(', ')}`);
  for (const type of AGENT_MESSAGE_TYPES) {
    const frame = text(validFrame(r, type, 'fz-a'));
    t.equal(
      judge(frame, 'registered', MAX_PAYLOAD_BYTES).expect,
      type === 'register' ? 'refuse' : 'accept',
      type,
    );
    t.equal(judge(frame, 'new', MAX_PAYLOAD_BYTES).expect, type === 'register' ? 'accept' : 'refuse', type);
  }
  const heartbeat = text({ type: 'heartbeat', running: [] });
  t.equal(judge({ ...heartbeat, binary: true }, 'registered', MAX_PAYLOAD_BYTES).expect, 'refuse', 'binary');
  t.equal(judge(text('{"type":"heartbeat"'), 'registered', MAX_PAYLOAD_BYTES).why, 'malformed JSON');
  t.equal(
    judge({ ...heartbeat, bytes: Buffer.from([0x7b, 0xff, 0x7d]) }, 'registered', 1000).why,
    'invalid UTF-8',
  );
  t.equal(judge(heartbeat, 'registered', 10).why, 'too large');
  const v2 = text({ ...validFrame(r, 'register', 'fz-a'), v: PROTOCOL_VERSION + 1 });
  t.equal(judge(v2, 'new', MAX_PAYLOAD_BYTES).why, 'protocol version');

  const taken = { kind: 'accepted' as const, code: 0, reason: '', registered: false, replies: [] };
  const closed = { ...taken, kind: 'closed' as const, code: 4400 };
  const refuse = judge(heartbeat, 'new', MAX_PAYLOAD_BYTES);
  t.equal(classify(refuse, taken, false).verdict, 'wrong', 'taken though the protocol refuses it');
  t.equal(classify(refuse, closed, false).verdict, 'refused');
  t.equal(classify(refuse, { ...closed, code: 1006 }, false).verdict, 'dropped', 'no close frame');
  t.equal(
    classify(refuse, { ...closed, code: 1006 }, true).verdict,
    'refused',
    'above twice the limit: 1006 is documented',
  );
  t.equal(classify(refuse, { ...taken, kind: 'timeout' }, false).verdict, 'anomaly');
  const badName = judge(
    text({ ...validFrame(r, 'register', 'x'), name: 'web\u001b[31m01' }),
    'new',
    MAX_PAYLOAD_BYTES,
  );
  t.equal(badName.expect, 'refuse', 'the wire schema refuses an ANSI name');
  const ansiRegister = {
    ...validFrame(r, 'register', 'x'),
    name: 'web\u001b[31m01',
  } as unknown as AgentMessage;
  t.match(wrongRegistration(ansiRegister).join(), /AGENT_NAME/, 'an ANSI name would be wrong if registered');
  t.equal(
    shapeOf('hset', ['{p:a:fz-s3}:reg']),
    shapeOf('hset', ['{p:a:fz-s12}:reg']),
    'shapes blank agent names',
  );
  t.not(shapeOf('rpush', ['p:outbuf:e-1']), shapeOf('hset', ['p:outbuf:e-1']));
});

t.test(`${frames} frames against a live gateway`, async (t) => {
  t.comment(`seed ${seed}: FLUKE_FUZZ_SEED=${seed} reproduces`);
  const report = await runWireFuzz({ frames, seed, log: (line) => t.comment(line) });
  const c = report.tally.total.counts;
  const g = report.gateway;
  t.comment(`\n${renderTally(report.tally)}`);
  t.comment(
    `refused run: ${report.refusedRun.frames} frames, ${report.refusedRun.writes} writes, unexplained ${report.refusedRun.unexplained.length}; ` +
      `RSS ${(g.rssStartBytes / 2 ** 20).toFixed(0)} → ${(g.rssPeakBytes / 2 ** 20).toFixed(0)} MB; ${report.seconds.toFixed(0)} s`,
  );
  for (const s of report.tally.samples.filter((x) => x.verdict !== 'dropped').slice(0, 10))
    t.comment(JSON.stringify(s));

  t.equal(report.tally.total.tried, frames, 'every frame tried');
  t.same(report.brokenTypes, [], 'the corpus builds a valid frame of every type');
  t.ok(g.alive, `the gateway is alive (exit ${g.exit})`);
  t.same(g.crashLines, [], 'no uncaught exception or unhandled rejection logged');
  t.equal(c.crashed, 0, 'no frame in flight when the gateway died');
  t.equal(c.anomaly, 0, 'every frame answered in time, no failed setup, no HTTP refusal');
  t.ok(g.registersAfter, 'a well-behaved agent registers afterwards');
  t.ok(c.refused > frames / 2 && c.accepted > 0, 'both refusals and acceptances were exercised');

  t.ok(report.refusedRun.frames > 0);
  t.same(report.refusedRun.unexplained, [], '0 Redis writes caused by refused frames');
  t.ok(report.refusedRun.probeWrites > 0, 'the write measurement sees a frame that does write');

  // Frames the protocol refuses must never be taken.
  const schemaWrong = [...report.tally.wrongWhy.entries()].filter(([why]) =>
    why.startsWith('taken, should be refused'),
  );
  t.same(schemaWrong, [], 'no frame the schema or the phase refuses was taken');
  // Findings of this fuzzer that other parts of issue 11 fix (stricter names and labels, output
  // only for live executions): counted and reported here, asserted in test/security-fuzz.test.ts.
  for (const [why, n] of report.tally.wrongWhy) t.comment(`accepted wrongly: ${why}: ${n}`);
});
