/**
 * What `fluke version` reports beyond the version: the Git commit and when the code was built.
 * The build is a plain `tsc`, so nothing is stamped at build time; the commit comes from
 * package.json's `gitHead` (npm writes it when packing from Git) or else from the checkout's
 * `.git` read directly (no git binary needed), and the build time is the compiled entry's mtime.
 * A Docker image has neither `.git` nor `gitHead`: its commit shows as unknown.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface BuildInfo {
  commit: string | null;
  built_at: string | null;
}

export function buildInfo(packageRoot: string, pkg: { gitHead?: unknown }): BuildInfo {
  const commit =
    typeof pkg.gitHead === 'string' && /^[0-9a-f]{40}$/.test(pkg.gitHead)
      ? pkg.gitHead
      : gitCommit(packageRoot);
  const entry = join(packageRoot, 'dist', 'bin', 'fluke.js');
  let built_at: string | null = null;
  try {
    built_at = statSync(entry).mtime.toISOString();
  } catch {
    // running from source (tsx): not built
  }
  return { commit, built_at };
}

/** The commit HEAD points at in the checkout at `root`, or null. Never throws. */
export function gitCommit(root: string): string | null {
  try {
    const dotGit = join(root, '.git');
    if (!existsSync(dotGit)) return null;
    let gitDir = dotGit;
    if (statSync(dotGit).isFile()) {
      // A worktree or submodule: `.git` is a file naming the real directory.
      const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
      if (!m?.[1]) return null;
      gitDir = resolve(root, m[1].trim());
    }
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    const ref = /^ref:\s*(.+)$/.exec(head)?.[1];
    if (!ref) return /^[0-9a-f]{40}$/.test(head) ? head : null;
    const common = existsSync(join(gitDir, 'commondir'))
      ? resolve(gitDir, readFileSync(join(gitDir, 'commondir'), 'utf8').trim())
      : gitDir;
    for (const dir of [gitDir, common]) {
      const file = join(dir, ref);
      if (existsSync(file)) return readFileSync(file, 'utf8').trim() || null;
    }
    return packedRef(readFileSync(join(common, 'packed-refs'), 'utf8'), ref);
  } catch {
    return null;
  }
}

/** Pure: the sha of `ref` in a packed-refs file. */
export function packedRef(text: string, ref: string): string | null {
  for (const line of text.split('\n')) {
    const [sha, name] = line.trim().split(' ');
    if (name === ref && sha && /^[0-9a-f]{40}$/.test(sha)) return sha;
  }
  return null;
}
