import { ManifestCompiler, readManifestDir } from './shared/manifest/compile.js';
const files = await readManifestDir(process.argv[2] ?? '.');
const r = await new ManifestCompiler().compile(files);
console.log(JSON.stringify(r, null, 1));
