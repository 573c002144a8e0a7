/**
 * The walk back past a bad head. When no desired state is stored (Redis flushed or replaced, first
 * start, a status naming a state that is gone) and the branch head does not compile, Git alone
 * must give the last good state: the newest commit on the head's first-parent history that
 * compiles, at most `limit` commits back (`server.git.walk_back`; 0: never walk back).
 *
 * First parents only: after a merge that is the branch the merge landed on, whose every commit
 * was once its head; a merged side branch may never have compiled as a whole.
 *
 * The decisions are pure; reading history and files and compiling are passed in. Commits whose
 * manifests are exactly those of a commit already tried (same paths, same blobs: a commit that
 * touched only a README) are not compiled again, and the compiler caches parses by content, so a
 * walk over commits that share files parses each file once.
 */
import type { CompileDiagnostic, CompileResult } from '../../shared/manifest/compile.js';
import type { GitFile } from '../git-source.js';

export interface WalkDeps {
  /** The first-parent history of `head`, newest first, `head` included, at most `max` commits. */
  history(head: string, max: number): Promise<string[]>;
  filesAt(revision: string): Promise<GitFile[]>;
  compile(files: GitFile[]): Promise<CompileResult>;
}

export type WalkOutcome =
  /** `back`: how many first-parent steps behind the head `revision` is (1: its parent). */
  | { kind: 'found'; revision: string; result: CompileResult; back: number; compiled: number }
  /** `looked`: commits before the head examined; `whole_history`: the root was reached within the limit. */
  | { kind: 'none'; looked: number; whole_history: boolean; compiled: number };

/** The same manifests (paths and contents) give the same compile result. */
export function manifestFingerprint(files: readonly GitFile[]): string {
  return files.map((f) => `${f.path}\0${f.blob}`).join('\n');
}

/**
 * Walks back from `head` (already compiled, with errors; `headFiles` its manifests) to the newest
 * first-parent ancestor that compiles, looking at no more than `limit` commits before the head.
 */
export async function walkBack(
  head: string,
  headFiles: readonly GitFile[],
  limit: number,
  deps: WalkDeps,
): Promise<WalkOutcome> {
  if (limit <= 0) return { kind: 'none', looked: 0, whole_history: false, compiled: 0 };
  const revisions = await deps.history(head, limit + 1);
  if (revisions[0] !== head) throw new Error(`history of ${head} does not start with it`);
  const older = revisions.slice(1, limit + 1);
  const bad = new Set([manifestFingerprint(headFiles)]);
  let compiled = 0;
  for (const [i, revision] of older.entries()) {
    const files = await deps.filesAt(revision);
    const fingerprint = manifestFingerprint(files);
    if (bad.has(fingerprint)) continue;
    compiled += 1;
    const result = await deps.compile(files);
    if (result.errors.length === 0) return { kind: 'found', revision, result, back: i + 1, compiled };
    bad.add(fingerprint);
  }
  return { kind: 'none', looked: older.length, whole_history: older.length < limit, compiled };
}

/** `3 error(s) in commit 0123456789ab; first: web.fluke.hcl:5: …`: what the status shows. */
export function badCommitMessage(revision: string, errors: readonly CompileDiagnostic[]): string {
  const first = errors[0];
  return `${errors.length} error(s) in commit ${revision.slice(0, 12)}; first: ${first?.file}:${first?.line}: ${first?.message}`;
}

/** What the status adds to the bad head's error once the walk has run. */
export function walkNote(outcome: WalkOutcome, limit: number): string {
  if (outcome.kind === 'found') {
    const steps =
      outcome.back === 1 ? 'its parent' : `${outcome.back} commits back on the first-parent history`;
    return `desired state recovered from ${outcome.revision.slice(0, 12)} (${steps}), the newest commit that compiles`;
  }
  if (limit <= 0) return 'no desired state: walking back past a bad head is off (server.git.walk_back = 0)';
  if (outcome.looked === 0) return 'no desired state: the head is the first commit of the branch';
  return outcome.whole_history
    ? `no desired state: none of the ${outcome.looked} earlier commit(s) of the branch compiles either`
    : `no desired state: none of the ${outcome.looked} commits before it compiles either (server.git.walk_back = ${limit})`;
}
