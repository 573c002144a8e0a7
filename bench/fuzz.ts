/**
 * The fuzzers at full size: the wire fuzzer against a live `fluke gateway` process (frames in
 * every phase, refused frames watched for Redis writes) and the manifest fuzzer over the compiler.
 * Prints a Markdown section (inputs tried / refused cleanly / crashed / accepted wrongly, per phase
 * and message type and per mutation); `--write` puts it into bench/RESULTS.md as "## Fuzzers".
 *
 *   node --import tsx bench/fuzz.ts --frames 100000 --manifests 10000 --seed N [--concurrency 16] [--write]
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { runHclFuzz } from '../testkit/fuzz/hcl-fuzz.js';
import { seedFromEnv } from '../testkit/fuzz/prng.js';
import { renderTally } from '../testkit/fuzz/tally.js';
import { runWireFuzz, type WireFuzzReport } from '../testkit/fuzz/wire-fuzz.js';
import { writeResultsSection } from './results-file.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '100000' },
    manifests: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    write: { type: 'boolean', default: false },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : seedFromEnv();
const frames = Number(values.frames);
const manifests = Number(values.manifests);
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');

const loadStart = load();
const started = new Date().toISOString().slice(0, 16).replace('T', ' ');
const wire =
  frames > 0 ? await runWireFuzz({ frames, seed, concurrency: Number(values.concurrency), log }) : null;
const hcl = manifests > 0 ? await runHclFuzz({ manifests, seed, log }) : null;

function wireSection(w: WireFuzzReport): string[] {
  const t = w.tally.total.counts;
  const g = w.gateway;
  const out = [
    `### Wire: ${w.frames} frames against a live gateway (${w.seconds.toFixed(0)} s)`,
    '',
    '| inputs tried | refused cleanly | dropped without a close frame | accepted (well-formed) | refused beyond the schema | crashed | accepted wrongly | anomalies |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${w.tally.total.tried} | ${t.refused} | ${t.dropped} | ${t.accepted} | ${t.stricter} | ${t.crashed} | ${t.wrong} | ${t.anomaly} |`,
    '',
    `- Refused-frames run: ${w.refusedRun.frames} frames, ${w.refusedRun.writes} Redis writes seen by MONITOR, ` +
      `**${w.refusedRun.unexplained.length} not explained** by the control run (${w.refusedRun.controlShapes} write shapes: ` +
      `the gateway idle, well-behaved sessions registering and leaving). Positive control: one task result for an instruction really issued to the agent, ` +
      `measured the same way, showed ${w.refusedRun.probeWrites} unexplained writes.`,
    ...w.refusedRun.unexplained.slice(0, 10).map((u) => `  - unexplained: \`${u}\``),
    `- Accepted run: ${w.acceptedRun.frames} frames; left ${w.acceptedRun.footprintKeys} output buffers and results jobs; ` +
      `output stored for executions nobody dispatched: ${w.acceptedRun.outputStoredForUnknown}.`,
    `- Gateway after the run: ${g.alive ? 'alive' : `**exited (${g.exit})**`}; a well-behaved agent ${g.registersAfter ? 'registers' : '**does not register**'}; ` +
      `uncaught/unhandled lines: ${g.crashLines.length}; error lines: ${g.errorLines.length}; ` +
      `RSS ${mb(g.rssStartBytes)} at start, ${mb(g.rssPeakBytes)} peak (sampled every 1,000 frames), ${mb(g.rssEndBytes)} at the end.`,
    ...(w.brokenTypes.length > 0
      ? [`- Corpus frames the schema refuses (update testkit/fuzz/frames.ts): ${w.brokenTypes.join(', ')}`]
      : []),
    '',
    renderTally(w.tally),
  ];
  const samples = w.tally.samples.filter((s) => s.verdict !== 'accepted' && s.verdict !== 'refused');
  if (samples.length > 0) {
    out.push(
      '',
      '<details><summary>Reproducers (phase, type, mutation, outcome, frame as base64)</summary>',
      '',
    );
    for (const s of samples.slice(0, 20))
      out.push(
        `- ${s.verdict}: ${s.phase} ${s.type} ${s.mutation} → ${s.outcome}; ${s.why}; \`${s.frame.slice(0, 400)}\`${s.binary ? ' (binary)' : ''}`,
      );
    out.push('', '</details>');
  }
  return out;
}

const section = [
  '## Fuzzers',
  '',
  `${started} UTC, ${cpus().length} cores (${cpus()[0]?.model ?? 'cpu'}), ${mb(totalmem())}, Node ${process.version}; ` +
    `load average ${loadStart} at start, ${load()} at the end (the machine is shared).`,
  '',
  `    node --import tsx bench/fuzz.ts --frames ${frames} --manifests ${manifests} --seed ${seed}`,
  '',
  ...(wire ? wireSection(wire) : []),
  ...(hcl
    ? [
        '',
        `### Manifests: ${hcl.tried} mutated manifests through the compiler (${hcl.seconds.toFixed(0)} s)`,
        '',
        '| inputs tried | refused cleanly (diagnostics) | still valid | crashed | over 2 s | slowest | p99 |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        `| ${hcl.tried} | ${hcl.refused} | ${hcl.compiled} | ${hcl.crashed} | ${hcl.slow} | ${hcl.slowestMs.toFixed(0)} ms | ${hcl.p99Ms.toFixed(0)} ms |`,
        '',
        `Corpus: ${hcl.corpus} valid manifests (docs/manifests.md, examples/, test/fixtures/manifests/). ` +
          'Accepted wrongly does not apply: a mutation that still compiles is a valid manifest.',
        ...hcl.failures
          .slice(0, 10)
          .map((f) => `- ${f.kind} #${f.i}: ${f.detail} — \`${JSON.stringify(f.sample.slice(0, 300))}\``),
      ]
    : []),
  '',
].join('\n');

process.stdout.write(section);
if (values.write) writeResultsSection('Fuzzers', section);
