import { ManifestCompiler } from './shared/manifest/compile.js';
import { parse } from '@cdktf/hcl2json';
const { manifest } = await import('./bench/compile.ts');
const files = Array.from({ length: 200 }, (_, f) => ({ path: `g${f}.fluke.hcl`, content: manifest(f) }));
const c = new ManifestCompiler();
await c.compile(files);
for (let i = 0; i < 5; i++) { const t = performance.now(); await c.compile(files); console.log('no-change', (performance.now() - t).toFixed(1)); }
for (let i = 0; i < 5; i++) { const t = performance.now(); await parse('x', files[3]!.content); console.log('one raw parse', (performance.now() - t).toFixed(1)); }
