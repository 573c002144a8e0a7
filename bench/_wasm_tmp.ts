import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { loadavg } from 'node:os';
import { manifest } from './compile.js';
const require = createRequire(import.meta.url);
const dir = require.resolve('@cdktf/hcl2json/package.json').replace(/package\.json$/, '');
const files = Array.from({ length: 200 }, (_, f) => ({ path: `g${f}.fluke.hcl`, content: manifest(f) }));
const r: Record<string, number> = {};
let t = performance.now();
let c = process.cpuUsage();
const cpu = (k: string) => { const d = process.cpuUsage(c); r[`${k}_cpu`] = (d.user + d.system) / 1000; c = process.cpuUsage(); };
const bytes = gunzipSync(readFileSync(`${dir}main.wasm.gz`));
r.gunzip = performance.now() - t; t = performance.now();
require(`${dir}wasm/bridge_wasm_exec.js`);
const G = (globalThis as unknown as { Go: new () => { importObject: WebAssembly.Imports; env: Record<string,string>; run(i: WebAssembly.Instance): Promise<void> } }).Go;
const go = new G();
if (process.env.XGOGC) go.env = { GOGC: process.env.XGOGC };
const mod = await WebAssembly.compile(bytes);
r.compile = performance.now() - t; t = performance.now();
const inst = await WebAssembly.instantiate(mod, go.importObject);
const root: Record<string, (...a: unknown[]) => void> = {};
(globalThis as Record<string, unknown>).__parse_terraform_config_wasm__ = root;
void go.run(inst);
r.run = performance.now() - t; t = performance.now();
const parse = (name: string, src: string) => new Promise<string>((res, rej) => root.parse!(name, src, (e: unknown, out: string) => e ? rej(new Error(String(e))) : res(out)));
await parse('w.hcl', 'a = 1');
r.first = performance.now() - t; t = performance.now(); cpu('load');
for (let pass = 0; pass < 3; pass++) {
  let bytesOut = 0;
  for (const f of files) bytesOut += (await parse(f.path, f.content)).length;
  r[`pass${pass}`] = performance.now() - t; t = performance.now(); cpu(`pass${pass}`);
  r.out = bytesOut;
}
if (process.env.BATCH) {
  const all = files.map((f) => f.content).join('\n');
  await parse('all.hcl', all);
  r.batch = performance.now() - t; t = performance.now();
}
for (const k in r) r[k] = Math.round(r[k]!);
console.log(process.env.XGOGC ?? '-', process.execArgv.join(' '), JSON.stringify(r), 'load', loadavg().map((x) => x.toFixed(1)).join(' '));
