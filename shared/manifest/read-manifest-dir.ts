/**
 * Reads the manifest files under a directory (the I/O half of the compiler). Bounded: it stops
 * at the file-count limit, never reads a file over the size limit, skips `.git` and
 * `node_modules`, and ignores symlinks that leave the directory (symlinked directories are not
 * followed at all, so a link cannot make it loop).
 */
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import type { CompileDiagnostic, ManifestFile } from './compile.js';
import { type CompileLimits, resolveLimits } from './limits.js';

const SKIP_DIRS = new Set(['.git', 'node_modules']);
/** Directory entries looked at before giving up, whatever matches. */
const MAX_ENTRIES = 200_000;

export class ManifestReadError extends Error {
  constructor(
    message: string,
    readonly diagnostics: CompileDiagnostic[] = [],
  ) {
    super(message);
    this.name = 'ManifestReadError';
  }
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep);
}

export async function readManifestDir(
  dir: string,
  glob = '**/*.fluke.hcl',
  limits: Partial<CompileLimits> = {},
): Promise<ManifestFile[]> {
  const lim = resolveLimits(limits);
  const root = await realpath(dir).catch(() => null);
  if (root === null || !(await stat(root)).isDirectory()) {
    throw new ManifestReadError(`${dir}: no such directory`);
  }
  const isManifest = picomatch(glob, { dot: false });
  const problems: CompileDiagnostic[] = [];
  const found: { path: string; full: string; size: number }[] = [];
  const pending = [root];
  let entries = 0;
  let total = 0;
  while (pending.length > 0) {
    const current = pending.pop() as string;
    for (const entry of await readdir(current, { withFileTypes: true })) {
      if (++entries > MAX_ENTRIES)
        throw new ManifestReadError(`${dir}: more than ${MAX_ENTRIES} entries to look through`);
      const full = join(current, entry.name);
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) pending.push(full);
        continue;
      }
      const rel = relative(root, full).split(sep).join('/');
      if (!isManifest(rel)) continue;
      let target = full;
      if (entry.isSymbolicLink()) {
        target = await realpath(full).catch(() => '');
        if (!target || !inside(root, target)) continue;
      } else if (!entry.isFile()) continue;
      const info = await lstat(target);
      if (!info.isFile()) continue;
      if (found.length === lim.maxFiles) {
        throw new ManifestReadError(`${dir}: more than ${lim.maxFiles} manifest files match ${glob}`);
      }
      if (info.size > lim.maxFileBytes) {
        problems.push({
          file: rel,
          line: 1,
          message: `file is ${info.size} bytes, more than the limit of ${lim.maxFileBytes}`,
        });
        continue;
      }
      total += info.size;
      if (total > lim.maxTotalBytes) {
        throw new ManifestReadError(`${dir}: manifests exceed ${lim.maxTotalBytes} bytes in total`);
      }
      found.push({ path: rel, full: target, size: info.size });
    }
  }
  if (problems.length > 0)
    throw new ManifestReadError(`${problems.length} manifest file(s) could not be read`, problems);
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const files: ManifestFile[] = [];
  for (const f of found) files.push({ path: f.path, content: await readFile(f.full, 'utf8') });
  return files;
}
