/**
 * The in-process twin of RedisStateStore: states by revision (kept as JSON, so callers never
 * share a mutable object with the store) and the source status, under the same contract
 * (test/store-desired-state.contract.ts). Superseded states do not expire.
 */
import type { CompileDiagnostic } from '../../shared/manifest/compile.js';
import type { DesiredState } from '../../shared/types.js';
import { type CurrentState, EMPTY_SOURCE_STATUS, type SourceStatus, type StateStore } from './state-store.js';

export class MemoryStateStore implements StateStore {
  readonly states = new Map<string, string>();
  private source: SourceStatus = { ...EMPTY_SOURCE_STATUS };

  async status(): Promise<SourceStatus> {
    return structuredClone(this.source);
  }

  async current(): Promise<CurrentState | null> {
    const { revision } = this.source;
    const json = revision ? this.states.get(revision) : undefined;
    if (!revision || json === undefined) return null;
    return { revision, state: JSON.parse(json) as DesiredState };
  }

  async saveGood(revision: string, state: DesiredState, at: Date): Promise<void> {
    this.states.set(revision, JSON.stringify(state));
    this.source = {
      ...this.source,
      revision,
      revision_at: at.toISOString(),
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error: null,
      task_count: state.tasks.length,
    };
  }

  async recordError(
    revision: string | null,
    message: string,
    diagnostics: CompileDiagnostic[],
    at: Date,
  ): Promise<void> {
    this.source = {
      ...this.source,
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error: { revision, message, diagnostics: diagnostics.slice(0, 100), at: at.toISOString() },
    };
  }

  async recordPoll(revision: string, at: Date): Promise<void> {
    const last_error = this.source.revision === revision ? null : this.source.last_error;
    this.source = {
      ...this.source,
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error,
    };
  }
}
