import { loadavg } from 'node:os';
import { manifest } from './compile.js';
const t0 = performance.now();
const { parse } = await import('@cdktf/hcl2json');
await parse('w.hcl', 'a = 1');
const wasm = performance.now() - t0;
const { scanHcl } = await import('../shared/hcl/outline.js');
const { parseHcl } = await import('../shared/hcl/parse.js');
const { countTokens, nestingHazard, DEFAULT_COMPILE_LIMITS } = await import('../shared/manifest/limits.js');
const { loadFile } = await import('../shared/manifest/loadFile.js');
const { ManifestCompiler } = await import('../shared/manifest/ManifestCompiler.js');
const files = Array.from({ length: 200 }, (_, f) => ({ path: `g${f}.fluke.hcl`, content: manifest(f) }));
const mode = process.argv[2] ?? 'phases';
const r: Record<string, number> = { wasm };
let t = performance.now();
if (mode === 'phases') {
  for (const f of files) { countTokens(f.content, 50000); nestingHazard(f.content); }
  r.prechecks = performance.now() - t; t = performance.now();
  for (const f of files) scanHcl(f.content);
  r.scan = performance.now() - t; t = performance.now();
  for (const f of files) await parse(f.path, f.content);
  r.rawParse = performance.now() - t; t = performance.now();
  for (const f of files) await parseHcl(f.path, f.content);
  r.parseHcl2 = performance.now() - t; t = performance.now();
  for (const f of files) await loadFile(f.path, f.content, DEFAULT_COMPILE_LIMITS);
  r.loadFile = performance.now() - t; t = performance.now();
  await new ManifestCompiler().compile(files);
  r.compile = performance.now() - t;
} else if (mode === 'compile') {
  await new ManifestCompiler().compile(files);
  r.compile = performance.now() - t;t = performance.now();
  await new ManifestCompiler().compile(files);
  r.compile2 = performance.now() - t;
} else {
  for (const f of files) await parse(f.path, f.content);
  r.raw = performance.now() - t;
}
for (const k in r) r[k] = Math.round(r[k]!);
console.log(JSON.stringify(r), 'load', loadavg().map((x) => x.toFixed(1)).join(' '));
