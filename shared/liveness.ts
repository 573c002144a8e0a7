/**
 * Every interval derived from `heartbeat_interval`, in one place, so the gateway, the agent, the
 * reconciler and the console agree on when something counts as gone. An agent heartbeats (and a
 * gateway announces itself) once per interval; three missed in a row is the rule everywhere, so
 * one lost or late beat (a GC pause, a slow Redis round trip) never ends a session.
 */

/** Used when the server config sets no `heartbeat_interval`. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

export interface Liveness {
  /** How often an agent heartbeats, and a gateway announces itself and sweeps its sockets. */
  heartbeatMs: number;
  /**
   * TTL of an agent's registry entry, renewed by every heartbeat: an entry outlives two lost
   * beats, and expires on its own when its gateway died without deregistering it.
   */
  registryTtlMs: number;
  /**
   * Silence after which a socket is taken for dead: the gateway closes a registered agent that
   * sent no heartbeat for this long, and the agent drops a gateway it heard nothing from (a host
   * death or a network cut sends no FIN, so only silence tells).
   */
  silenceMs: number;
  /**
   * A gateway not announced for this long is gone when kicking an old session: the kick only
   * hurries a close the registry already decided, so no slack is needed.
   */
  gatewayGoneMs: number;
  /**
   * A gateway not announced for this long is gone for instruction sends and the agent index:
   * three announces plus 5 s of slack for timer drift and Redis latency, because taking a live
   * gateway for gone makes its agents' instructions undeliverable.
   */
  gatewayStaleMs: number;
  /**
   * Time an authorised socket gets to send `register`: three heartbeats, but at least 10 s so a
   * short interval (tests, dev) does not cut off an agent that is slow to start.
   */
  registerTimeoutMs: number;
  /**
   * uWS idle timeout in seconds (before uWS's own clamping): above one heartbeat interval, so
   * only a socket silent at the transport level (no heartbeat, no pong) times out.
   */
  idleTimeoutSeconds: number;
  /**
   * How often the reconciler checks deadlines of pending work: a disconnected agent gets at least
   * ~10 s (three checks, 5 s apart) to come back before its work times out.
   */
  deadlineCheckMs: number;
}

export function liveness(heartbeatIntervalMs: number): Liveness {
  const threeBeats = 3 * heartbeatIntervalMs;
  return {
    heartbeatMs: heartbeatIntervalMs,
    registryTtlMs: threeBeats,
    silenceMs: threeBeats,
    gatewayGoneMs: threeBeats,
    gatewayStaleMs: threeBeats + 5000,
    registerTimeoutMs: Math.max(threeBeats, 10_000),
    idleTimeoutSeconds: threeBeats / 1000,
    deadlineCheckMs: Math.max(threeBeats, 5000),
  };
}
