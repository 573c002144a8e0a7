/**
 * The manifest fuzzer at suite size: mutated manifests from every valid manifest the project ships
 * into the real compiler. None may throw or return a malformed result, none may take over 2 s.
 * FLUKE_FUZZ_MANIFESTS sets the count (default 1,000; `bench/fuzz.ts` runs 10,000), FLUKE_FUZZ_SEED
 * the seed (printed, so a failure reproduces).
 */
import t from 'tap';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import { manifestCorpus, mutateHcl, RICH_MANIFEST, runHclFuzz } from '../testkit/fuzz/hcl-fuzz.js';
import { countFromEnv, rng, seedFromEnv } from '../testkit/fuzz/prng.js';

const seed = seedFromEnv();
const manifests = countFromEnv('FLUKE_FUZZ_MANIFESTS', 1000);

t.test('the corpus is the shipped manifests, and they compile', async (t) => {
  const corpus = await manifestCorpus();
  t.ok(corpus.length >= 8, `corpus of ${corpus.length} manifests (docs, examples, fixtures)`);
  t.ok(corpus.includes(RICH_MANIFEST));
  // The mutator changes what it is given, and a seed replays it exactly.
  const a = mutateHcl(RICH_MANIFEST, rng(5));
  t.not(a, RICH_MANIFEST);
  t.equal(mutateHcl(RICH_MANIFEST, rng(5)), a, 'same seed, same mutation');
});

t.test(`${manifests} mutated manifests: 0 crashes, none over 2 s`, async (t) => {
  t.comment(`seed ${seed}: FLUKE_FUZZ_SEED=${seed} reproduces`);
  const report = await runHclFuzz({ manifests, seed });
  t.comment(
    `tried ${report.tried}, refused cleanly ${report.refused}, still valid ${report.compiled}, crashed ${report.crashed}, ` +
      `slow ${report.slow}; slowest ${report.slowestMs.toFixed(0)} ms, p99 ${report.p99Ms.toFixed(0)} ms, ${report.seconds.toFixed(0)} s`,
  );
  t.equal(report.tried, manifests);
  t.equal(report.crashed, 0, 'no compile threw or returned a malformed result');
  t.equal(report.slow, 0, 'no compile took over 2 s');
  t.ok(
    report.refused > report.tried / 2,
    'most mutations are refused with diagnostics (the mutator breaks things)',
  );
  for (const f of report.failures.slice(0, 5)) t.comment(JSON.stringify(f));
});

t.test('a thrown error counts as a crash', async (t) => {
  // The fuzzer's own check: a compiler that throws must be reported, or the test above proves nothing.
  const original = ManifestCompiler.prototype.compile;
  ManifestCompiler.prototype.compile = async () => {
    throw new TypeError('boom');
  };
  t.teardown(() => {
    ManifestCompiler.prototype.compile = original;
  });
  const report = await runHclFuzz({ manifests: 3, seed: 1 }).catch((err: unknown) => err);
  // The corpus is read with the same compiler: it throws there first.
  t.type(report, Error);
  ManifestCompiler.prototype.compile = async function (this: ManifestCompiler, files) {
    if (files[0]?.path === 'fuzz.fluke.hcl') throw new TypeError('boom');
    return original.call(this, files);
  };
  const again = await runHclFuzz({ manifests: 3, seed: 1 });
  t.equal(again.crashed, 3);
  t.match(again.failures[0]?.detail, /TypeError: boom/);
});
