/**
 * The compiled desired state in Redis, keyed by commit, and the source status that
 * `/api/v1/status` shows. Derived data: after a FLUSHALL the next poll rebuilds it from Git.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../../shared/keys.js';
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

const EMPTY: SourceStatus = {
  revision: null,
  revision_at: null,
  last_poll_at: null,
  last_seen_revision: null,
  last_error: null,
  task_count: 0,
};

/** How long superseded states stay readable (for events/UI that refer to an older revision). */
const OLD_STATE_TTL_S = 24 * 3600;

export class RedisStateStore implements StateStore {
  private cache: CurrentState | null = null;
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async status(): Promise<SourceStatus> {
    const raw = await this.redis.hgetall(this.keys.sourceStatus());
    if (!raw.status) return { ...EMPTY };
    return { ...EMPTY, ...(JSON.parse(raw.status) as SourceStatus) };
  }

  private async writeStatus(update: Partial<SourceStatus>): Promise<void> {
    const next = { ...(await this.status()), ...update };
    await this.redis.hset(this.keys.sourceStatus(), 'status', JSON.stringify(next));
  }

  /** Parsed states are immutable per revision, so one cached copy per process is safe. */
  async current(): Promise<CurrentState | null> {
    const { revision } = await this.status();
    if (!revision) return null;
    if (this.cache?.revision === revision) return this.cache;
    const json = await this.redis.get(this.keys.desiredState(revision));
    if (!json) return null;
    this.cache = { revision, state: JSON.parse(json) as DesiredState };
    return this.cache;
  }

  async saveGood(revision: string, state: DesiredState, at: Date): Promise<void> {
    const previous = (await this.status()).revision;
    await this.redis.set(this.keys.desiredState(revision), JSON.stringify(state));
    if (previous && previous !== revision)
      await this.redis.expire(this.keys.desiredState(previous), OLD_STATE_TTL_S);
    await this.writeStatus({
      revision,
      revision_at: at.toISOString(),
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error: null,
      task_count: state.tasks.length,
    });
    this.cache = { revision, state };
  }

  async recordError(
    revision: string | null,
    message: string,
    diagnostics: CompileDiagnostic[],
    at: Date,
  ): Promise<void> {
    await this.writeStatus({
      last_poll_at: at.toISOString(),
      last_seen_revision: revision,
      last_error: { revision, message, diagnostics: diagnostics.slice(0, 100), at: at.toISOString() },
    });
  }

  /** A poll that changed nothing; seeing the good revision again clears an older error (a revert). */
  async recordPoll(revision: string, at: Date): Promise<void> {
    const status = await this.status();
    const last_error = status.revision === revision ? null : status.last_error;
    await this.writeStatus({ last_poll_at: at.toISOString(), last_seen_revision: revision, last_error });
  }
}
