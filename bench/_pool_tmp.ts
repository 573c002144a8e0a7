import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { manifest } from './compile.js';
const require = createRequire(import.meta.url);
const pkg = require.resolve('@cdktf/hcl2json/package.json').replace(/package\.json$/, '');
const files = Array.from({ length: 200 }, (_, f) => ({ path: `g${f}.fluke.hcl`, content: manifest(f) }));
const mode = process.argv[2] ?? 'v1';
const N = Number(process.argv[3] ?? 2);
const GOGC = process.env.XGOGC ?? '';
const t0 = performance.now();
const c0 = process.cpuUsage();
const src1 = `
const { parentPort, workerData } = require('node:worker_threads');
const { parse } = require(workerData.pkg + 'lib/index.js');
parentPort.on('message', async (m) => {
  try { const j = await parse(m.path, m.content); parentPort.postMessage({ id: m.id, ok: true, n: JSON.stringify(j).length }); }
  catch (e) { parentPort.postMessage({ id: m.id, ok: false, e: String(e) }); }
});`;
const src2 = `
const { parentPort, workerData } = require('node:worker_threads');
require(workerData.pkg + 'wasm/bridge_wasm_exec.js');
const go = new globalThis.Go();
if (workerData.gogc) go.env = { GOGC: workerData.gogc };
const root = {};
globalThis.__parse_terraform_config_wasm__ = root;
const ready = WebAssembly.instantiate(workerData.module, go.importObject).then((inst) => { void go.run(inst); });
parentPort.on('message', async (m) => {
  await ready;
  root.parse(m.path, m.content, (err, out) => {
    if (err) parentPort.postMessage({ id: m.id, ok: false, e: String(err) });
    else { const j = JSON.parse(out); parentPort.postMessage({ id: m.id, ok: true, n: out.length }); }
  });
});`;
let module: WebAssembly.Module | undefined;
if (mode === 'v2') module = await WebAssembly.compile(gunzipSync(readFileSync(`${pkg}main.wasm.gz`)));
const tLoad = performance.now() - t0;
const workers = Array.from({ length: N }, () => new Worker(mode === 'v2' ? src2 : src1, { eval: true, execArgv: [], workerData: { pkg, module, gogc: GOGC } }));
let next = 0;
const done = await Promise.all(workers.map(async (w) => {
  let n = 0;
  while (next < files.length) {
    const i = next++;
    const f = files[i]!;
    await new Promise<void>((res, rej) => { w.once('message', (m: { ok: boolean; e?: string }) => (m.ok ? res() : rej(new Error(m.e)))); w.postMessage({ id: i, ...f }); });
    n++;
  }
  return n;
}));
const wall = performance.now() - t0;
const cu = process.cpuUsage(c0);
console.log(mode, N, GOGC || '-', JSON.stringify({ load: Math.round(tLoad), wall: Math.round(wall), cpu: Math.round((cu.user + cu.system) / 1000), done }), 'load', loadavg().map((x) => x.toFixed(1)).join(' '));
for (const w of workers) await w.terminate();
