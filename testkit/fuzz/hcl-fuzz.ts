// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
/**
 * The manifest fuzzer: mutated manifests into the real compiler (HCL parse, evaluation, checks),
 * one at a time and timed. A crash is anything thrown (the compiler reports every problem as a
 * diagnostic and never throws) or a result of the wrong shape; a compile over the time bound is
 * counted as slow. The corpus is every valid manifest the project ships: docs/manifests.md's
 * examples, examples/, test/fixtures/manifests/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestCompiler } from '../../shared/manifest/compile.js';
import { root } from '../system.js';
import { type Rng, rng } from './prng.js';

/** A manifest exercising most of the language; the corpus's first entry. */
export const RICH_MANIFEST = `locals {
  dir  = "/opt/app"
  list = [for n in ["a", "b"] : upper(n) if n != ""]
}
task "deploy" {
  description = "x \${local.dir} %{ if true }y%{ endif }"
  drift { policy = "remediate" }
  selector {
    match_labels      = { role = "web" }
    match_expressions = [{ key = "zone", operator = "In", values = ["a"] }]
  }
  shell "a" {
    check   = "test -d \${local.dir}"
    command = "mkdir -p \${local.dir} && echo $HOME"
    env     = { A = join(",", local.list) }
  }
  systemd "b" { unit = "x.service" }
  mise "c" {
    working_dir = local.dir
    git { url = "https://example.org/x.git" }
  }
}
`;

/** Fragments that make HCL interesting: brackets, templates, heredocs, operators, odd characters. */
export const PIECES = [
  '{',
  '}',
  '[',
  ']',
  '(',
  ')',
  '"',
  '${',
  '%{',
  '}',
  '=',
  '\n',
  'task',
  'local.',
  '<<EOT\n',
  'EOT\n',
  '\\',
  '#',
  '/*',
  ',',
  '...',
  '~',
  '?',
  ':',
  'for x in ',
  'if ',
  '\u0000',
  '\uffff',
  'é',
  '\u001b[31m',
  '\u202e',
  '\ud800',
  '9'.repeat(40),
  '1e999',
  '-',
  '!',
  '*',
  '%',
  '&&',
  '||',
  'null',
  'true',
  'local.list[99]',
  'upper(',
  'join(",", ',
  '${local.dir}',
  '%{ for a in local.list }',
  '%{ endfor }',
  'selector { match_labels = { role = "web" } }\n',
  'shell "z" {\n check = "a"\n command = "b"\n}\n',
  'locals { z = local.z }\n',
  '__proto__',
  'constructor',
];

/** One to six edits: insert a piece, delete a run, duplicate a span, replace a character. */
export function mutateHcl(src: string, r: Rng): string {
  let s = src;
  const edits = 1 + r.int(6);
  for (let i = 0; i < edits; i++) {
    const at = r.int(s.length + 1);
    const kind = r.next();
    if (kind < 0.35) s = s.slice(0, at) + r.pick(PIECES) + s.slice(at);
    else if (kind < 0.6) s = s.slice(0, at) + s.slice(at + 1 + r.int(20));
    else if (kind < 0.75) s = s.slice(0, at) + s.slice(r.int(s.length + 1)) + s.slice(at);
    else if (kind < 0.85) s = s.slice(0, at) + String.fromCharCode(r.int(0x3000)) + s.slice(at + 1);
    else if (kind < 0.9) {
      // Repeat a span: many tasks, long lists, deep nesting.
      const len = 1 + r.int(60);
      s =
        s.slice(0, at) +
        s.slice(at, at + len).repeat(2 + r.int(r.chance(0.1) ? 400 : 20)) +
        s.slice(at + len);
    } else if (kind < 0.95) {
      // Swap two lines.
      const lines = s.split('\n');
      const a = r.int(lines.length);
      const b = r.int(lines.length);
      [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
      s = lines.join('\n');
    } else s = s.slice(0, at) + r.pick(['"', '${', '%{', '[', '{', '(']).repeat(1 + r.int(200)) + s.slice(at);
  }
  return s;
}

/** Random bytes, mostly ASCII: no structure at all. */
export function randomText(r: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.int(r.chance(0.8) ? 128 : 0xffff));
  return s;
}

/** Every valid manifest the project ships (those that compile without errors). */
export async function manifestCorpus(compiler = new ManifestCompiler()): Promise<string[]> {
  const texts = [RICH_MANIFEST];
  const docs = readFileSync(join(root, 'docs', 'manifests.md'), 'utf8');
  for (const m of docs.matchAll(/```hcl manifest\n([\s\S]*?)```/g)) texts.push(m[1] ?? '');
  for (const dir of ['examples', 'test/fixtures/manifests/warn']) {
    for (const f of readdirSync(join(root, dir)))
      if (f.endsWith('.hcl')) texts.push(readFileSync(join(root, dir, f), 'utf8'));
  }
  const valid: string[] = [];
  for (const text of texts) {
    const result = await compiler.compile([{ path: 'corpus.fluke.hcl', content: text }]);
    if (result.errors.length === 0) valid.push(text);
  }
  return valid;
}

export interface HclFuzzReport {
  seed: number;
  tried: number;
  /** Compiled with diagnostics (refused cleanly). */
  refused: number;
  /** Compiled without errors (a mutation that is still a valid manifest). */
  compiled: number;
  crashed: number;
  slow: number;
  slowestMs: number;
  slowestSample: string;
  p99Ms: number;
  corpus: number;
  failures: Array<{ i: number; kind: 'crash' | 'slow'; detail: string; ms: number; sample: string }>;
  seconds: number;
}

/** A result of the right shape: arrays of diagnostics with a line and a message. */
function shapeProblem(result: Awaited<ReturnType<ManifestCompiler['compile']>>): string | null {
  if (!Array.isArray(result.errors) || !Array.isArray(result.warnings) || !Array.isArray(result.state?.tasks))
    return 'bad result shape';
  for (const e of [...result.errors, ...result.warnings]) {
    if (typeof e.line !== 'number' || e.line < 1 || typeof e.message !== 'string' || e.message === '')
      return `bad diagnostic ${JSON.stringify(e).slice(0, 200)}`;
  }
  return null;
}

export async function runHclFuzz(o: {
  manifests: number;
  seed: number;
  /** Over this a compile counts as slow (default 2000 ms). */
  boundMs?: number;
  log?: (line: string) => void;
}): Promise<HclFuzzReport> {
  const t0 = Date.now();
  const bound = o.boundMs ?? 2000;
  const compiler = new ManifestCompiler();
  const corpus = await manifestCorpus(compiler);
  o.log?.(
    `hcl fuzz: seed ${o.seed} (FLUKE_FUZZ_SEED=${o.seed} reproduces), ${o.manifests} manifests, corpus ${corpus.length}`,
  );
  const r = rng(o.seed);
  const report: HclFuzzReport = {
    seed: o.seed,
    tried: 0,
    refused: 0,
    compiled: 0,
    crashed: 0,
    slow: 0,
    slowestMs: 0,
    slowestSample: '',
    p99Ms: 0,
    corpus: corpus.length,
    failures: [],
    seconds: 0,
  };
  const times: number[] = [];
  for (let i = 0; i < o.manifests; i++) {
    // Mostly mutations of the corpus; some mutations of mutations, some structureless text.
    const roll = r.next();
    let content = mutateHcl(r.pick(corpus), r);
    if (roll < 0.2) content = mutateHcl(content, r);
    else if (roll > 0.97) content = randomText(r, 1 + r.int(2000));
    const started = performance.now();
    let crash: string | null = null;
    let errors = 0;
    try {
      const result = await compiler.compile([{ path: 'fuzz.fluke.hcl', content }]);
      crash = shapeProblem(result);
      errors = result.errors.length;
    } catch (err) {
      crash = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    const ms = performance.now() - started;
    times.push(ms);
    report.tried++;
    if (ms > report.slowestMs) {
      report.slowestMs = ms;
      report.slowestSample = content.slice(0, 300);
    }
    if (crash) {
      report.crashed++;
      report.failures.push({ i, kind: 'crash', detail: crash, ms, sample: content.slice(0, 2000) });
    } else if (errors > 0) report.refused++;
    else report.compiled++;
    if (ms > bound) {
      report.slow++;
      report.failures.push({
        i,
        kind: 'slow',
        detail: `${ms.toFixed(0)} ms`,
        ms,
        sample: content.slice(0, 2000),
      });
    }
    if (i % 1000 === 0 && i > 0) o.log?.(`  manifest ${i}: slowest ${report.slowestMs.toFixed(0)} ms`);
  }
  times.sort((a, b) => a - b);
  report.p99Ms = times[Math.floor(times.length * 0.99)] ?? 0;
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}
