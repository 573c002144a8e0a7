/**
 * The Git source port: where the desired state comes from. One call gives the tip of the tracked
 * branch and the manifest files in it, read from that commit (never from a working tree that a
 * concurrent checkout could leave half-written). Two more read the fetched history, for the walk
 * back past a bad head when no desired state is stored (reconciler/handlers/walk-back.ts).
 *
 * Adapters: `SimpleGitSource` (reconciler/git/simple-git-source.ts, real git) and `MemoryGitSource`
 * below, for unit tests of the workers that use the port.
 */

import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import { redactSecrets } from '../shared/redact.js';

export interface GitFile {
  /** Relative to the repository root, POSIX separators. */
  path: string;
  /** UTF-8 decoded. */
  content: string;
  /** The git blob sha: equal content ⇒ equal blob, so compilers can cache by it. */
  blob: string;
}

export interface GitSnapshot {
  /** The commit sha at the tip of the tracked branch. */
  revision: string;
  /** Files matching the manifest glob, sorted by path. */
  files: GitFile[];
}

export interface GitSource {
  /** Brings the branch up to date and returns its tip. Rejects with a `GitSourceError`. */
  fetch(signal?: AbortSignal): Promise<GitSnapshot>;
  /**
   * The first-parent history of a fetched commit, newest first and starting with the commit
   * itself: at most `max` commits (fewer when the history is shorter). A merge is followed
   * along its first parent, the branch it was merged into.
   */
  firstParents(revision: string, max: number, signal?: AbortSignal): Promise<string[]>;
  /** The manifest files of a fetched commit, read from the object store, never a working tree. */
  snapshotAt(revision: string, signal?: AbortSignal): Promise<GitSnapshot>;
}

/**
 * - invalid_config:   bad url, branch, glob or key file; fixing the config is the only cure.
 * - branch_not_found: the remote has no such branch.
 * - auth_failed:      the remote refused the credentials (or there were none).
 * - unreachable:      the remote could not be reached or is not a repository.
 * - busy:             another git process holds a lock on the cache; try again later.
 * - file_too_large:   a manifest file exceeds the size cap.
 * - git_failed:       anything else, after one wipe-and-reclone attempt.
 */
export type GitSourceErrorCode =
  | 'invalid_config'
  | 'branch_not_found'
  | 'auth_failed'
  | 'unreachable'
  | 'busy'
  | 'file_too_large'
  | 'git_failed';

export class GitSourceError extends Error {
  override readonly name = 'GitSourceError';
  readonly code: GitSourceErrorCode;
  constructor(code: GitSourceErrorCode, message: string, options?: { cause?: unknown }) {
    // Messages quote git's stderr, which may carry the URL: never its credentials.
    super(redactSecrets(message), options);
    this.code = code;
  }

  /** Whether the next poll could succeed without anyone changing the config. */
  get transient(): boolean {
    return this.code === 'unreachable' || this.code === 'busy' || this.code === 'git_failed';
  }
}

/**
 * The manifest glob as picomatch reads it: `**\/` also matches zero directories, so
 * `**\/*.fluke.hcl` matches `web.fluke.hcl` at the root. Dot-directories (`.github/`) are skipped.
 */
export function manifestMatcher(glob: string): (path: string) => boolean {
  if (glob.trim().length === 0) throw new GitSourceError('invalid_config', 'manifest_glob is empty');
  return picomatch(glob, { dot: false });
}

/** The sha git would give this content as a blob (`git hash-object`). */
export function gitBlobSha(content: string | Buffer): string {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

/**
 * An in-memory repository: `commit()` puts a new commit on the branch tip (its first parent is the
 * old tip), `merge()` adds a merge commit, `commitOn()` makes a commit off the branch (a side
 * branch to merge). Applies the same glob as the real source, so workers see the same filtering.
 */
export class MemoryGitSource implements GitSource {
  private readonly matches: (path: string) => boolean;
  private readonly commitsByRevision = new Map<
    string,
    { parents: string[]; files: Record<string, string> }
  >();
  private tip: string | null = null;
  private failures: Error[] = [];
  private commits = 0;
  /** How many times `fetch` was called (including failed calls). */
  fetchCount = 0;
  /** How many times `snapshotAt` was called. */
  snapshotCount = 0;

  constructor(options: { manifestGlob?: string } = {}) {
    this.matches = manifestMatcher(options.manifestGlob ?? '**/*.fluke.hcl');
  }

  /** Sets the branch tip to a new commit of exactly these files; returns the new revision. */
  commit(files: Record<string, string>): string {
    this.tip = this.commitOn(this.tip ? [this.tip] : [], files);
    return this.tip;
  }

  /** A merge of `side` into the branch: first parent the old tip, second `side`. */
  merge(side: string, files: Record<string, string>): string {
    if (!this.tip) throw new Error('memory git source: nothing to merge into');
    this.tip = this.commitOn([this.tip, side], files);
    return this.tip;
  }

  /** A commit with these parents that does not move the branch tip. */
  commitOn(parents: string[], files: Record<string, string>): string {
    this.commits += 1;
    const revision = createHash('sha1')
      .update(`${this.commits}\0${parents.join(',')}\0${JSON.stringify(Object.entries(files).sort())}`)
      .digest('hex');
    this.commitsByRevision.set(revision, { parents: [...parents], files: { ...files } });
    return revision;
  }

  /** The next fetch rejects with this error (queue several for several failures). */
  failNext(error: Error = new GitSourceError('unreachable', 'memory git source: simulated outage')): void {
    this.failures.push(error);
  }

  async fetch(signal?: AbortSignal): Promise<GitSnapshot> {
    this.fetchCount += 1;
    signal?.throwIfAborted();
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (!this.tip) throw new GitSourceError('branch_not_found', 'memory git source: nothing committed yet');
    return this.read(this.tip);
  }

  async firstParents(revision: string, max: number, signal?: AbortSignal): Promise<string[]> {
    signal?.throwIfAborted();
    const out: string[] = [];
    let at: string | undefined = revision;
    while (at !== undefined && out.length < max) {
      const parents: string[] = this.commitOf(at).parents;
      out.push(at);
      at = parents[0];
    }
    return out;
  }

  async snapshotAt(revision: string, signal?: AbortSignal): Promise<GitSnapshot> {
    this.snapshotCount += 1;
    signal?.throwIfAborted();
    return this.read(revision);
  }

  private commitOf(revision: string): { parents: string[]; files: Record<string, string> } {
    const c = this.commitsByRevision.get(revision);
    if (!c) throw new GitSourceError('git_failed', `memory git source: no commit ${revision}`);
    return c;
  }

  private read(revision: string): GitSnapshot {
    const files = Object.entries(this.commitOf(revision).files)
      .filter(([path]) => this.matches(path))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([path, content]) => ({ path, content, blob: gitBlobSha(content) }));
    return { revision, files };
  }
}
