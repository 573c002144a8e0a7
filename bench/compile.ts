/**
 * Manifest compile benchmark: 200 files, 1,000 tasks, 5 steps each, with locals and templates.
 * Reports WASM load, cold compile, one-file-changed recompile, peak RSS, and the raw hcl2json
 * parse of the same files as a baseline.
 *
 *   node --import tsx bench/compile.ts
 */

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ManifestCompiler as Compiler } from '../shared/manifest/compile.js';

const FILES = 200;
const TASKS_PER_FILE = 5;

/** One generated manifest file: file `f`'s five tasks; `revision` changes its text. */
export function manifest(f: number, revision = 0): string {
  const tasks: string[] = [];
  for (let i = 0; i < TASKS_PER_FILE; i++) {
    const n = f * TASKS_PER_FILE + i;
    tasks.push(`task "svc_${n}" {
  description = "service ${n} in \${local.env_${f}} (rev ${revision})"
  drift { policy = "${['remediate', 'alert_only', 'remediate_and_alert'][n % 3]}" }
  selector {
    match_labels      = { role = "role-${n % 10}", env = local.env_${f} }
    match_expressions = [{ key = "zone", operator = "In", values = local.zones }]
  }
  mise "runtimes" {
    working_dir = "\${local.base_${f}}/svc-${n}"
    check_task  = "check-node-\${local.node}"
    git { url = "https://git.example.org/svc-${n}.git" }
  }
  shell "config" {
    check   = "test -f /etc/svc-${n}/config.json"
    command = "install -D \${local.base_${f}}/svc-${n}/config.json /etc/svc-${n}/config.json"
    env     = { SVC = "svc-${n}", PORT = "\${8000 + ${i}}" }
  }
  shell "dirs" {
    check   = "%{ for d in local.dirs }test -d /var/${n}/\${d} && %{ endfor }true"
    command = "mkdir -p \${join(" ", [for d in local.dirs : "/var/${n}/\${d}"])}"
    run_as  = "svc"
  }
  systemd "unit" { unit = "svc-${n}.service" }
  systemd "timer" {
    unit    = "svc-${n}-backup.timer"
    enabled = ${n % 2 === 0}
  }
}
`);
  }
  const shared =
    f === 0
      ? 'locals {\n  node  = "22"\n  zones = ["a", "b", "c"]\n  dirs  = ["data", "logs", "tmp"]\n}\n'
      : '';
  return `${shared}locals {\n  env_${f}  = "production"\n  base_${f} = "/opt/\${upper("g${f}")}"\n}\n${tasks.join('\n')}`;
}

const ms = (from: number): number => Math.round((performance.now() - from) * 10) / 10;

async function writeFiles(dir: string): Promise<void> {
  for (let f = 0; f < FILES; f++)
    await writeFile(join(dir, `g${String(f).padStart(3, '0')}.fluke.hcl`), manifest(f));
}

/** In a fresh process: WASM load, then hcl2json alone over every file, twice (cold, then warm). */
async function rawBaseline(dir: string): Promise<{ wasm: number; first: number; second: number }> {
  let t = performance.now();
  const { parse } = await import('@cdktf/hcl2json');
  await parse('warmup.hcl', 'a = 1');
  const wasm = ms(t);
  const { readManifestDir } = await import('../shared/manifest/compile.js');
  const files = await readManifestDir(dir);
  const passes: number[] = [];
  for (let pass = 0; pass < 2; pass++) {
    t = performance.now();
    for (const file of files) await parse(file.path, file.content);
    passes.push(ms(t));
  }
  return { wasm, first: passes[0] ?? 0, second: passes[1] ?? 0 };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fluke-bench-'));
  try {
    await writeFiles(dir);
    // The baseline runs in its own process so that both sides start cold.
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--raw', dir],
      { encoding: 'utf8' },
    );
    if (child.status !== 0) throw new Error(`baseline failed: ${child.stderr}`);
    const raw = JSON.parse(child.stdout) as { wasm: number; first: number; second: number };

    // hcl2json starts loading its WASM when imported: time the import and the first call.
    let t = performance.now();
    const { parse } = await import('@cdktf/hcl2json');
    await parse('warmup.hcl', 'a = 1');
    const wasmLoad = ms(t);

    const { ManifestCompiler, readManifestDir } = await import('../shared/manifest/compile.js');
    t = performance.now();
    const files = await readManifestDir(dir);
    const read = ms(t);

    const compiler: Compiler = new ManifestCompiler();
    t = performance.now();
    const cold = await compiler.compile(files);
    const coldCompile = ms(t);
    if (cold.errors.length > 0)
      throw new Error(`bench manifests do not compile: ${JSON.stringify(cold.errors[0])}`);
    const steps = cold.state.tasks.reduce((n, task) => n + task.steps.length, 0);

    t = performance.now();
    await new ManifestCompiler().compile(files);
    const secondFresh = ms(t);

    const warm: number[] = [];
    for (let r = 1; r <= 10; r++) {
      const changed = files.map((file, i) =>
        i === 57 ? { path: file.path, content: manifest(57, r) } : file,
      );
      const before = compiler.parseCount;
      t = performance.now();
      const result = await compiler.compile(changed);
      warm.push(ms(t));
      if (compiler.parseCount !== before + 1 || result.errors.length > 0)
        throw new Error('warm compile re-parsed more than one file');
    }
    warm.sort((a, b) => a - b);

    const report = {
      machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
      files: files.length,
      tasks: cold.state.tasks.length,
      steps,
      bytes: files.reduce((n, f) => n + f.content.length, 0),
      wasm_load_ms: wasmLoad,
      read_dir_ms: read,
      cold_compile_ms: coldCompile,
      cold_compile_with_wasm_load_ms: Math.round((coldCompile + wasmLoad) * 10) / 10,
      raw_hcl2json_cold_ms: raw.first,
      cold_vs_raw: Math.round((coldCompile / raw.first) * 100) / 100,
      fresh_compiler_warm_process_ms: secondFresh,
      raw_hcl2json_warm_ms: raw.second,
      warm_one_file_changed_ms: { median: warm[4], max: warm[9] },
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      load_average: loadavg().map((x) => Math.round(x * 10) / 10),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv[2] === '--raw') console.log(JSON.stringify(await rawBaseline(process.argv[3] ?? '.')));
  else await main();
}
