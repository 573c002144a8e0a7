/**
 * Manifest compile benchmark: 200 files, 1,000 tasks, 5 steps each, with locals and templates.
 * Reports WASM load, cold compile, one-file-changed recompile, peak RSS, and the raw hcl2json
 * parse of the same files as a baseline.
 *
 *   node --import tsx bench/compile.ts
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from '@cdktf/hcl2json';
import { ManifestCompiler, readManifestDir } from '../shared/manifest/compile.js';

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

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fluke-bench-'));
  try {
    for (let f = 0; f < FILES; f++)
      await writeFile(join(dir, `g${String(f).padStart(3, '0')}.fluke.hcl`), manifest(f));

    let t = performance.now();
    await parse('warmup.hcl', 'a = 1');
    const wasmLoad = ms(t);

    t = performance.now();
    const files = await readManifestDir(dir);
    const read = ms(t);

    t = performance.now();
    for (const file of files) await parse(file.path, file.content);
    const rawParse = ms(t);

    const compiler = new ManifestCompiler();
    t = performance.now();
    const cold = await compiler.compile(files);
    const coldCompile = ms(t);
    if (cold.errors.length > 0)
      throw new Error(`bench manifests do not compile: ${JSON.stringify(cold.errors[0])}`);
    const steps = cold.state.tasks.reduce((n, task) => n + task.steps.length, 0);

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

    const rss = Math.round(process.resourceUsage().maxRSS / 1024);
    const report = {
      machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
      files: files.length,
      tasks: cold.state.tasks.length,
      steps,
      bytes: files.reduce((n, f) => n + f.content.length, 0),
      wasm_load_ms: wasmLoad,
      read_dir_ms: read,
      raw_hcl2json_parse_ms: rawParse,
      cold_compile_ms: coldCompile,
      cold_compile_with_wasm_load_ms: Math.round((coldCompile + wasmLoad) * 10) / 10,
      cold_vs_raw_parse: Math.round((coldCompile / rawParse) * 100) / 100,
      warm_one_file_changed_ms: { median: warm[4], max: warm[9] },
      peak_rss_mb: rss,
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
