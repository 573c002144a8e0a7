/**
 * The manifest files of one commit, read from the object store: `ls-tree` lists the tree, the
 * size caps are checked before any content is read, and the blobs not already at hand come from
 * one `cat-file --batch` process. Blobs are content-addressed, so those of an earlier read can be
 * reused as they are: a walk over commits that share files reads each blob once.
 */
import type { SimpleGit } from 'simple-git';
import { type GitFile, GitSourceError } from '../git-source.js';
import { isRegularFile, parseLsTree } from './parse-git-output.js';

export interface ReadManifestsOptions {
  git: SimpleGit;
  revision: string;
  matches: (path: string) => boolean;
  maxFileBytes: number;
  maxTotalBytes: number;
  /** Reads these blobs (one cat-file process). */
  readBlobs(shas: string[]): Promise<Map<string, Buffer>>;
  /** Files of an earlier read whose blobs need not be read again. */
  known?: readonly GitFile[];
}

export async function readManifests(o: ReadManifestsOptions): Promise<GitFile[]> {
  const { revision } = o;
  const entries = parseLsTree(await o.git.raw(['ls-tree', '-r', '-l', '-z', '--full-tree', revision])).filter(
    (e) => isRegularFile(e) && o.matches(e.path),
  );
  let total = 0;
  for (const e of entries) {
    const size = e.size ?? 0;
    if (size > o.maxFileBytes) {
      throw new GitSourceError(
        'file_too_large',
        `${e.path} at ${revision.slice(0, 12)} is ${size} bytes; manifests are limited to ${o.maxFileBytes}`,
      );
    }
    total += size;
  }
  if (total > o.maxTotalBytes) {
    throw new GitSourceError(
      'file_too_large',
      `manifests at ${revision.slice(0, 12)} total ${total} bytes; the limit is ${o.maxTotalBytes}`,
    );
  }
  const known = new Map((o.known ?? []).map((f) => [f.blob, f.content]));
  const missing = [...new Set(entries.map((e) => e.sha))].filter((sha) => !known.has(sha));
  const blobs = await o.readBlobs(missing);
  return entries
    .map((e) => {
      const content = known.get(e.sha) ?? blobs.get(e.sha)?.toString('utf8');
      if (content === undefined) throw new Error(`blob ${e.sha} for ${e.path} was not returned by cat-file`);
      return { path: e.path, content, blob: e.sha };
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
