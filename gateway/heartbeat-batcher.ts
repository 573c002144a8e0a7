/**
 * Heartbeats on their way to the registry. One registry pipeline per heartbeat cost ~58 µs of CPU
 * each, so beats wait a little and leave together: on a short timer, or at once in a crowd. What
 * the registry answers (this session was replaced, or its entry had to be rebuilt) goes back to
 * the session controller, which owns the sockets.
 */
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { Registry } from '../store/registry/registry.js';
import type { AgentConnection } from './agent-connection.js';

/** Heartbeats waiting for the registry leave at once when this many are waiting. */
const HEARTBEAT_FLUSH_COUNT = 500;
/** Otherwise they wait at most this long (capped at a tenth of the heartbeat interval). */
const HEARTBEAT_FLUSH_MS = 200;

export interface HeartbeatBatcherDeps {
  heartbeatIntervalMs: number;
  registry: Registry;
  logger: Logger;
  /** Remember a registry write until it settles (drain waits for all of them). */
  track<T>(promise: Promise<T>): Promise<T>;
  /** Another session owns the name now: this socket must close. */
  replaced(conn: AgentConnection): void;
  /** The registry had lost the entry and the heartbeat wrote it back whole. */
  rebuilt(conn: AgentConnection): void;
}

export class HeartbeatBatcher {
  private readonly beats = new Set<AgentConnection>();
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly flushMs: number;
  private registryDown = false;

  constructor(private readonly d: HeartbeatBatcherDeps) {
    this.flushMs = Math.min(HEARTBEAT_FLUSH_MS, d.heartbeatIntervalMs / 10);
  }

  /** A heartbeat arrived on `conn` (its entry's last_seen already updated). */
  add(conn: AgentConnection): void {
    this.beats.add(conn);
    if (this.beats.size >= HEARTBEAT_FLUSH_COUNT) {
      if (this.immediate) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.immediate = setImmediate(() => this.flushNow());
    } else if (!this.timer && !this.immediate) {
      this.timer = setTimeout(() => this.flushNow(), this.flushMs);
      this.timer.unref();
    }
  }

  /** The socket closed: its entry is deregistered, never renewed. */
  remove(conn: AgentConnection): void {
    this.beats.delete(conn);
  }

  /** Writes the waiting heartbeats now (tracked, so a drain waits for them). */
  flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    if (this.beats.size === 0) return;
    void this.d.track(this.flush());
  }

  private async flush(): Promise<void> {
    const conns = [...this.beats].filter((c) => c.phase === 'registered' && c.entry);
    this.beats.clear();
    if (conns.length === 0) return;
    try {
      const outcomes = await this.d.registry.heartbeat(conns.map((c) => c.entry!));
      if (this.registryDown) this.d.logger.info('registry reachable again');
      this.registryDown = false;
      outcomes.forEach((outcome, i) => {
        const conn = conns[i]!;
        if (outcome === 'replaced') this.d.replaced(conn);
        else if (outcome === 'rebuilt') this.d.rebuilt(conn);
      });
    } catch (err) {
      // Logged once per outage: every batch fails alike until Redis is back.
      if (!this.registryDown)
        this.d.logger.error({ err: errorMessage(err) }, 'heartbeat registry write failed');
      this.registryDown = true;
    }
  }
}
