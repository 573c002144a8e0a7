/**
 * Poll: fetch the tracked branch, compile what changed, store the state by commit, and fan out
 * reconciles when a new good commit lands. A bad commit never replaces the last good state.
 * When no state is stored at all (Redis flushed, first start) and the head does not compile, the
 * last good state is rebuilt from Git alone by walking back the head's first-parent history
 * (walk-back.ts); the bad head is still what the status reports, with file:line.
 * Single-flight across replicas through a Redis lock; a second poll while one runs is a no-op.
 */
import type { Logger } from 'pino';
import { coerceError } from '../../shared/errors.js';
import type { CompileResult } from '../../shared/manifest/compile.js';
import { redactSecrets } from '../../shared/redact.js';
import type { CurrentState, SourceStatus, StateStore } from '../../store/desired-state/state-store.js';
import type { GitFile } from '../git-source.js';
import { badCommitMessage, walkBack, walkNote } from './walk-back.js';

export interface PollDeps {
  fetch(): Promise<{ revision: string; files: GitFile[] }>;
  compile(files: GitFile[]): Promise<CompileResult>;
  /** The first-parent history of a fetched commit, newest first, itself included, at most `max`. */
  history(revision: string, max: number): Promise<string[]>;
  /** The manifests of a fetched commit. */
  filesAt(revision: string): Promise<GitFile[]>;
  /** How many commits before a bad head the walk may look at (`server.git.walk_back`; 0: never). */
  walkBack: number;
  state: StateStore;
  /** Reconcile every agent (trigger `commit`). */
  fanoutAll(revision: string): Promise<void>;
  /** Runs `fn` only if no other poll holds the lock; returns null when skipped. */
  singleFlight<T>(fn: () => Promise<T>): Promise<T | null>;
  logger: Logger;
  now?: () => Date;
}

export type PollOutcome =
  | { kind: 'skipped' }
  | { kind: 'unchanged'; revision: string }
  | { kind: 'updated'; revision: string; tasks: number }
  /** No state was stored and the head is bad: the newest good commit before it is in force. */
  | { kind: 'recovered'; revision: string; head: string; tasks: number }
  | { kind: 'rejected'; revision: string; errors: number }
  | { kind: 'fetch_failed'; error: string };

/**
 * What a poll of `head` has to do, from what is stored. A head already known bad is compiled
 * again only when the state it was kept out of is gone while the status still names it (after
 * the walk found nothing, status.revision is null and the walk's answer cannot have changed).
 */
export function pollPlan(
  status: SourceStatus,
  current: CurrentState | null,
  head: string,
): 'unchanged' | 'known_bad' | 'compile' {
  if (current && current.revision === head) return 'unchanged';
  if (status.last_error?.revision === head && (current !== null || status.revision === null))
    return 'known_bad';
  return 'compile';
}

export async function pollHandler(deps: PollDeps): Promise<PollOutcome> {
  const now = deps.now ?? (() => new Date());
  const outcome = await deps.singleFlight(async (): Promise<PollOutcome> => {
    let fetched: { revision: string; files: GitFile[] };
    try {
      fetched = await deps.fetch();
    } catch (err) {
      // Git's own messages may quote the URL: its credentials never reach logs or the status.
      const message = redactSecrets(coerceError(err).message);
      deps.logger.warn({ err: message }, 'git fetch failed');
      await deps.state.recordError(null, `git fetch failed: ${message}`, [], now());
      return { kind: 'fetch_failed', error: message };
    }
    const status = await deps.state.status();
    const current = status.revision ? await deps.state.current() : null;
    const plan = pollPlan(status, current, fetched.revision);
    if (plan === 'unchanged') {
      await deps.state.recordPoll(fetched.revision, now());
      return { kind: 'unchanged', revision: fetched.revision };
    }
    if (plan === 'known_bad') {
      // The same bad commit as last time: no need to compile it again, nor to walk again.
      await deps.state.recordPoll(fetched.revision, now());
      const errors = status.last_error?.diagnostics.length ?? 0;
      return { kind: 'rejected', revision: fetched.revision, errors };
    }
    const result = await deps.compile(fetched.files);
    if (result.errors.length > 0) {
      if (current === null) return recoverFromGit(deps, fetched, result, now);
      deps.logger.warn({ revision: fetched.revision, errors: result.errors.length }, 'bad commit kept out');
      const message = badCommitMessage(fetched.revision, result.errors);
      await deps.state.recordError(fetched.revision, message, result.errors, now());
      return { kind: 'rejected', revision: fetched.revision, errors: result.errors.length };
    }
    await deps.state.saveGood(fetched.revision, result.state, now());
    deps.logger.info(
      { revision: fetched.revision, tasks: result.state.tasks.length },
      'desired state updated',
    );
    await deps.fanoutAll(fetched.revision);
    return { kind: 'updated', revision: fetched.revision, tasks: result.state.tasks.length };
  });
  return outcome ?? { kind: 'skipped' };
}

/**
 * No state is stored and the head is bad: walk back to the newest commit that compiles, store it
 * as the last good state and fan out, then record the head's error beside it (saveGood clears
 * the error; recorded after, it makes the next poll of the same head a cheap `known_bad`).
 */
async function recoverFromGit(
  deps: PollDeps,
  head: { revision: string; files: GitFile[] },
  headResult: CompileResult,
  now: () => Date,
): Promise<PollOutcome> {
  const errors = headResult.errors;
  const base = badCommitMessage(head.revision, errors);
  let walked: Awaited<ReturnType<typeof walkBack>>;
  try {
    walked = await walkBack(head.revision, head.files, deps.walkBack, deps);
  } catch (err) {
    const message = redactSecrets(coerceError(err).message);
    deps.logger.warn({ err: message, head: head.revision }, 'walking back past a bad head failed');
    // Recorded without a revision, so the next poll walks again.
    await deps.state.recordError(null, `${base}; walking back past it failed: ${message}`, errors, now());
    return { kind: 'rejected', revision: head.revision, errors: errors.length };
  }
  const note = walkNote(walked, deps.walkBack);
  if (walked.kind === 'none') {
    deps.logger.error(
      { head: head.revision, errors: errors.length, looked: walked.looked, walk_back: deps.walkBack },
      'no desired state: the branch head does not compile and no commit before it within walk_back does',
    );
    await deps.state.recordError(head.revision, `${base}; ${note}`, errors, now());
    return { kind: 'rejected', revision: head.revision, errors: errors.length };
  }
  const { revision, result } = walked;
  await deps.state.saveGood(revision, result.state, now());
  await deps.state.recordError(head.revision, `${base}; ${note}`, errors, now());
  deps.logger.warn(
    {
      revision,
      head: head.revision,
      back: walked.back,
      compiled: walked.compiled,
      errors: errors.length,
      tasks: result.state.tasks.length,
    },
    `desired state recovered from ${revision.slice(0, 12)} (head ${head.revision.slice(0, 12)} does not compile)`,
  );
  await deps.fanoutAll(revision);
  return { kind: 'recovered', revision, head: head.revision, tasks: result.state.tasks.length };
}
