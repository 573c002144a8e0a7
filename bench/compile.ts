/**
 * Manifest compile benchmark: 200 files, 1,000 tasks, 5 steps each, with locals and templates.
 * Each cold measure runs in a fresh process (WASM and worker start included), RUNS times, with
 * the load average noted for each run; the median is reported. The raw hcl2json baseline (its
 * WASM load plus one call per file, in one thread) runs in fresh processes too, in between.
 * One-file-changed and peak memory come from this process and the cold processes.
 *
 *   node --import tsx bench/compile.ts [--runs N]
 */

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const cpuMs = (u: NodeJS.CpuUsage): number => Math.round((u.user + u.system) / 1000);

async function writeFiles(dir: string): Promise<void> {
  for (let f = 0; f < FILES; f++)
    await writeFile(join(dir, `g${String(f).padStart(3, '0')}.fluke.hcl`), manifest(f));
}

interface Cold {
  load: string;
  imports_ms: number;
  compile_ms: number;
  since_process_start_ms: number;
  cpu_ms: number;
  peak_rss_mb: number;
}

/** In a fresh process: one compile, through the worker pool or in this thread. */
async function coldRun(dir: string, inThread: boolean): Promise<Cold> {
  const before = load();
  let t = performance.now();
  const { ManifestCompiler, readManifestDir } = await import('../shared/manifest/compile.js');
  const files = await readManifestDir(dir);
  const imports = ms(t);
  const cpu = process.cpuUsage();
  t = performance.now();
  const result = await new ManifestCompiler(undefined, inThread ? { parser: 'in-thread' } : {}).compile(
    files,
  );
  const compile = ms(t);
  if (result.errors.length > 0 || result.state.tasks.length !== FILES * TASKS_PER_FILE)
    throw new Error(`bench manifests do not compile: ${JSON.stringify(result.errors[0])}`);
  return {
    load: before,
    imports_ms: imports,
    compile_ms: compile,
    since_process_start_ms: Math.round(performance.now()),
    cpu_ms: cpuMs(process.cpuUsage(cpu)),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

interface Raw {
  load: string;
  wasm_load_ms: number;
  first_pass_ms: number;
  cold_total_ms: number;
  second_pass_ms: number;
  cpu_ms: number;
}

/** In a fresh process: hcl2json alone, WASM load then one call per file, twice. */
async function rawRun(dir: string): Promise<Raw> {
  const before = load();
  // Read directly: importing Fluke's modules must not start anything of hcl2json's before the clock.
  const names = (await readdir(dir)).filter((n) => n.endsWith('.fluke.hcl')).sort();
  const files = await Promise.all(
    names.map(async (n) => ({ path: n, content: await readFile(join(dir, n), 'utf8') })),
  );
  const cpu = process.cpuUsage();
  let t = performance.now();
  const { parse } = await import('@cdktf/hcl2json');
  await parse('warmup.hcl', 'a = 1');
  const wasm = ms(t);
  const passes: number[] = [];
  for (let pass = 0; pass < 2; pass++) {
    t = performance.now();
    for (const file of files) await parse(file.path, file.content);
    passes.push(ms(t));
  }
  const first = passes[0] ?? 0;
  return {
    load: before,
    wasm_load_ms: wasm,
    first_pass_ms: first,
    cold_total_ms: Math.round((wasm + first) * 10) / 10,
    second_pass_ms: passes[1] ?? 0,
    cpu_ms: cpuMs(process.cpuUsage(cpu)),
  };
}

function child<T>(mode: string, dir: string): T {
  const run = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), mode, dir], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`${mode} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** One-file-changed recompiles (10) in this process, after a first compile. */
async function warmRuns(dir: string): Promise<number[]> {
  const { ManifestCompiler, readManifestDir } = await import('../shared/manifest/compile.js');
  const files = await readManifestDir(dir);
  const compiler = new ManifestCompiler();
  await compiler.compile(files);
  const warm: number[] = [];
  for (let r = 1; r <= 10; r++) {
    const changed = files.map((file, i) => (i === 57 ? { path: file.path, content: manifest(57, r) } : file));
    const before = compiler.parseCount;
    const t = performance.now();
    const result = await compiler.compile(changed);
    warm.push(ms(t));
    if (compiler.parseCount !== before + 1 || result.errors.length > 0)
      throw new Error('warm compile re-parsed more than one file');
  }
  return warm.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
  const uptimeBefore = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  const dir = await mkdtemp(join(tmpdir(), 'fluke-bench-'));
  try {
    await writeFiles(dir);
    const cold: Cold[] = [];
    const inThread: Cold[] = [];
    const raw: Raw[] = [];
    for (let r = 0; r < runs; r++) {
      cold.push(child<Cold>('--cold', dir));
      raw.push(child<Raw>('--raw', dir));
      inThread.push(child<Cold>('--cold-in-thread', dir));
    }
    const warm = await warmRuns(dir);
    const coldMedian = median(cold.map((c) => c.compile_ms));
    const rawMedian = median(raw.map((c) => c.cold_total_ms));
    const report = {
      machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
      files: FILES,
      tasks: FILES * TASKS_PER_FILE,
      steps: FILES * TASKS_PER_FILE * 5,
      bytes: Array.from({ length: FILES }, (_, f) => manifest(f).length).reduce((a, b) => a + b, 0),
      uptime_before: uptimeBefore,
      cold_compile_ms_median: coldMedian,
      cold_compile_in_thread_ms_median: median(inThread.map((c) => c.compile_ms)),
      raw_hcl2json_cold_ms_median: rawMedian,
      cold_vs_raw: Math.round((coldMedian / rawMedian) * 100) / 100,
      warm_one_file_changed_ms: { median: warm[4], max: warm[9] },
      peak_rss_mb_cold_process: Math.max(...cold.map((c) => c.peak_rss_mb)),
      peak_rss_mb_this_process: Math.round(process.resourceUsage().maxRSS / 1024),
      runs: { cold, raw, in_thread: inThread },
      uptime_after: spawnSync('uptime', { encoding: 'utf8' }).stdout.trim(),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [mode, dir = '.'] = process.argv.slice(2);
  if (mode === '--raw') console.log(JSON.stringify(await rawRun(dir)));
  else if (mode === '--cold' || mode === '--cold-in-thread')
    console.log(JSON.stringify(await coldRun(dir, mode === '--cold-in-thread')));
  else await main();
}
