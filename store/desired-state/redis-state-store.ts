/**
 * The desired state in Redis: one string per revision (`keys.desiredState`, superseded ones expire
 * after a day) and the source status as JSON in one hash field (`keys.sourceStatus`).
 */
import type { Keys } from '../../shared/keys.js';
import type { CompileDiagnostic } from '../../shared/manifest/compile.js';
import type { DesiredState } from '../../shared/types.js';
import type { RedisClient } from '../redis/client.js';
import { type CurrentState, EMPTY_SOURCE_STATUS, type SourceStatus, type StateStore } from './state-store.js';

/** How long superseded states stay readable (for events/UI that refer to an older revision). */
const OLD_STATE_TTL_S = 24 * 3600;

export interface RedisStateStoreOptions {
  redis: RedisClient;
  keys: Keys;
}

export class RedisStateStore implements StateStore {
  private cache: CurrentState | null = null;
  private readonly redis: RedisClient;
  private readonly keys: Keys;

  constructor({ redis, keys }: RedisStateStoreOptions) {
    this.redis = redis;
    this.keys = keys;
  }

  async status(): Promise<SourceStatus> {
    const raw = await this.redis.hgetall(this.keys.sourceStatus());
    if (!raw.status) return { ...EMPTY_SOURCE_STATUS };
    return { ...EMPTY_SOURCE_STATUS, ...(JSON.parse(raw.status) as SourceStatus) };
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
