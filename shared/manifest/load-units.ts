/**
 * Every manifest file to its FileUnit, from the content-hash cache where the content is unchanged.
 * Files that need parsing are all started before any is awaited: each runs its pre-checks and
 * the HCL scan here, then hands hcl2json's part to the parser (a worker pool), so the workers
 * parse while this thread scans the next files.
 */
import { createHash } from 'node:crypto';
import type { Hcl2Json } from '../hcl/parse.js';
import type { CompileDiagnostic, ManifestFile } from './compile.js';
import type { CompileLimits } from './limits.js';
import { type FileUnit, loadFile } from './load-file.js';
import { messageOf } from './local-table.js';

export interface LoadedUnits {
  units: { path: string; unit: FileUnit }[];
  /** The cache for the next compile: what this one used, so memory follows the repository. */
  cache: Map<string, FileUnit>;
  /** Files parsed (cache misses). */
  parsed: number;
}

/** Files scanned between two yields to the event loop (which delivers the workers' answers). */
const YIELD_EVERY = 8;

async function parseOne(
  file: ManifestFile,
  limits: CompileLimits,
  hcl2json: Hcl2Json | undefined,
): Promise<FileUnit> {
  try {
    return await loadFile(file.path, file.content, limits, hcl2json);
  } catch (err) {
    return { errors: [{ line: 1, message: `could not parse: ${messageOf(err)}` }], attrs: [], blocks: [] };
  }
}

export async function loadUnits(
  files: ManifestFile[],
  cache: Map<string, FileUnit>,
  limits: CompileLimits,
  hcl2json: Hcl2Json | undefined,
  errors: CompileDiagnostic[],
): Promise<LoadedUnits> {
  const started: { path: string; hash: string; unit: FileUnit | Promise<FileUnit> }[] = [];
  const pending = new Map<string, FileUnit | Promise<FileUnit>>();
  let total = 0;
  let parsed = 0;
  for (const [i, file] of files.entries()) {
    if (i === limits.maxFiles) {
      const message = `more than ${limits.maxFiles} manifest files; the rest were not read`;
      errors.push({ file: file.path, line: 1, message });
      break;
    }
    total += file.content.length;
    if (total > limits.maxTotalBytes) {
      const message = `manifests exceed ${limits.maxTotalBytes} bytes in total; the rest were not read`;
      errors.push({ file: file.path, line: 1, message });
      break;
    }
    const hash = createHash('sha256').update(file.content).digest('hex');
    let unit = pending.get(hash) ?? cache.get(hash);
    if (!unit) {
      parsed++;
      unit = parseOne(file, limits, hcl2json);
      if (parsed % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    pending.set(hash, unit);
    started.push({ path: file.path, hash, unit });
  }
  const units: LoadedUnits['units'] = [];
  const next = new Map<string, FileUnit>();
  for (const { path, hash, unit: promised } of started) {
    const unit = await promised;
    next.set(hash, unit);
    for (const e of unit.errors) {
      errors.push(
        e.column === undefined ? { file: path, line: e.line, message: e.message } : { file: path, ...e },
      );
    }
    units.push({ path, unit });
  }
  return { units, cache: next, parsed };
}
