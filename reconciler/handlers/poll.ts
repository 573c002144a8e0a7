/**
 * Poll: fetch the tracked branch, compile what changed, store the state by commit, and fan out
 * reconciles when a new good commit lands. A bad commit never replaces the last good state.
 * Single-flight across replicas through a Redis lock; a second poll while one runs is a no-op.
 */
import type { Logger } from 'pino';
import { coerceError } from '../../shared/errors.js';
import type { CompileResult, ManifestFile } from '../../shared/manifest/compile.js';
import { redactSecrets } from '../../shared/redact.js';
import type { StateStore } from '../../store/desired-state/state-store.js';

export interface PollDeps {
  fetch(): Promise<{ revision: string; files: ManifestFile[] }>;
  compile(files: ManifestFile[]): Promise<CompileResult>;
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
  | { kind: 'rejected'; revision: string; errors: number }
  | { kind: 'fetch_failed'; error: string };

export async function pollHandler(deps: PollDeps): Promise<PollOutcome> {
  const now = deps.now ?? (() => new Date());
  const outcome = await deps.singleFlight(async (): Promise<PollOutcome> => {
    let fetched: { revision: string; files: ManifestFile[] };
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
    if (current && current.revision === fetched.revision) {
      await deps.state.recordPoll(fetched.revision, now());
      return { kind: 'unchanged', revision: fetched.revision };
    }
    if (status.last_error && status.last_error.revision === fetched.revision) {
      // The same bad commit as last time: no need to compile it again.
      await deps.state.recordPoll(fetched.revision, now());
      return { kind: 'rejected', revision: fetched.revision, errors: status.last_error.diagnostics.length };
    }
    const result = await deps.compile(fetched.files);
    if (result.errors.length > 0) {
      const first = result.errors[0];
      const message = `${result.errors.length} error(s) in commit ${fetched.revision.slice(0, 12)}; first: ${first?.file}:${first?.line}: ${first?.message}`;
      deps.logger.warn({ revision: fetched.revision, errors: result.errors.length }, 'bad commit kept out');
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
