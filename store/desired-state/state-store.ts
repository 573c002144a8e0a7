/**
 * The desired-state port: the compiled desired state by revision, and the source status that
 * `/api/v1/status` shows.
 *
 * Glossary: a *good* revision compiled cleanly and its state is *current* (in force); a *poll*
 * that saw a revision records it as last seen; an *error* (fetch failure or bad commit) is kept
 * beside the good revision until a good commit, or seeing the good revision again, clears it.
 * Derived data: after a FLUSHALL the next poll rebuilds it from Git.
 */
import type { CompileDiagnostic } from '../../shared/manifest/compile.js';
import type { DesiredState } from '../../shared/types.js';

export interface SourceStatus {
  /** The last good revision, whose state is in force. */
  revision: string | null;
  revision_at: string | null;
  last_poll_at: string | null;
  /** The revision the last poll saw (good or bad). */
  last_seen_revision: string | null;
  /** Set when the last poll failed (fetch error, or a bad commit); cleared by a good one. */
  last_error: {
    revision: string | null;
    message: string;
    diagnostics: CompileDiagnostic[];
    at: string;
  } | null;
  task_count: number;
}

export interface CurrentState {
  revision: string;
  state: DesiredState;
}

export interface StateStore {
  status(): Promise<SourceStatus>;
  current(): Promise<CurrentState | null>;
  saveGood(revision: string, state: DesiredState, at: Date): Promise<void>;
  recordError(
    revision: string | null,
    message: string,
    diagnostics: CompileDiagnostic[],
    at: Date,
  ): Promise<void>;
  recordPoll(revision: string, at: Date): Promise<void>;
}

/** The status of a store nothing was saved in yet. */
export const EMPTY_SOURCE_STATUS: SourceStatus = {
  revision: null,
  revision_at: null,
  last_poll_at: null,
  last_seen_revision: null,
  last_error: null,
  task_count: 0,
};
