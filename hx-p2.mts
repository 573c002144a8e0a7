import { ManifestCompiler } from './shared/manifest/compile.js';
const { manifest } = await import('./bench/compile.ts');
const files = Array.from({ length: 200 }, (_, f) => ({ path: `g${f}.fluke.hcl`, content: manifest(f) }));
const c = new ManifestCompiler();
await c.compile(files);
const t = performance.now();
for (let i = 0; i < 20; i++) await c.compile(files);
console.log('avg', ((performance.now() - t) / 20).toFixed(1));
