import { ManifestCompiler } from './shared/manifest/compile.js';
const { manifest } = await import('./bench/compile.ts');
const files = Array.from({ length: 200 }, (_, f) => ({ path: `g${f}.fluke.hcl`, content: manifest(f) }));
const c = new ManifestCompiler();
await c.compile(files);
for (let i = 0; i < 8; i++) { const t = performance.now(); await c.compile(files); console.log('total', (performance.now() - t).toFixed(1), JSON.stringify((globalThis as any).PH, (k, v) => typeof v === 'number' ? Math.round(v * 10) / 10 : v)); }
