/**
 * Every Redis key and channel Fluke uses comes from here.
 *
 * Cluster safety: keys touched together in one command or MULTI share a hash tag.
 * - Each BullMQ queue has its own hash tag `{<prefix>:q:<queue>}`: one queue's keys share a slot (BullMQ
 *   needs that) and different queues land on different shards.
 * - Per-agent keys carry `{a:<name>}` so an agent's registry entry, statuses and events can be
 *   updated in one MULTI.
 * - Cluster-wide indexes that scripts or MULTIs touch together (agent index, known agents, gateways
 *   and their inboxes) live under `{<prefix>:g}`. Unrelated global keys have tags of their own, so
 *   on a cluster their load lands on other shards: the Git source's keys `{<prefix>:s}`, the
 *   drifted/failing index `{<prefix>:p}`, the all-events index `{<prefix>:e}`, metrics `{<prefix>:m}`.
 */
export class Keys {
  readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** The `prefix` option of the BullMQ Queue/Worker/QueueEvents of `queue`: its own hash tag. */
  bullPrefix(queue: string): string {
    return `{${this.prefix}:q:${queue}}`;
  }

  private g(rest: string): string {
    return `{${this.prefix}:g}:${rest}`;
  }
  /** A global key under its own hash tag `{<prefix>:<tag>}`. */
  private tagged(tag: string, rest: string): string {
    return `{${this.prefix}:${tag}}:${rest}`;
  }
  private a(agent: string, rest: string): string {
    return `${this.prefix}:{a:${agent}}:${rest}`;
  }

  // ---- registry ----
  /** Hash: the live registry entry of one agent; TTL 3× heartbeat. */
  agent(name: string): string {
    return this.a(name, 'reg');
  }
  /** Sorted set: agent name → last-seen ms. Entries whose hash expired are pruned on read. */
  agentIndex(): string {
    return this.g('agents');
  }
  /** Sorted set: every agent seen recently (name → last-seen ms), kept as long as events. */
  knownAgents(): string {
    return this.g('known');
  }
  /**
   * Hash: agent name → JSON of the labels it last registered with, so a disconnected agent keeps
   * them. Beside knownAgents (same hash tag) so pruning drops a name from both in one script; it
   * holds no name knownAgents does not.
   */
  knownLabels(): string {
    return this.g('known-labels');
  }
  /**
   * Stream: instructions and kicks for one gateway (gateway/gateway-inbox.ts). Beside the gateways
   * hash (same hash tag), so one script checks the gateway is alive and appends.
   */
  gatewayInbox(gatewayId: string): string {
    return this.g(`inbox:${gatewayId}`);
  }
  /** Hash: gateway id → last-seen ms (gateways announce themselves). */
  gateways(): string {
    return this.g('gateways');
  }

  // ---- identity ----
  /** String: the random identity key, when `server.identity.key` is not set (SET NX, no TTL). */
  identityKey(): string {
    return `${this.prefix}:identity-key`;
  }
  /** Hash: who holds an agent name (store/identity/enrollments.ts); TTL identity.enrollment_ttl. */
  enrollment(name: string): string {
    return this.a(name, 'enrollment');
  }

  // ---- desired state ----
  /** String: compiled desired state JSON for one commit. */
  desiredState(revision: string): string {
    return this.tagged('s', `state:${revision}`);
  }
  /** Hash: current revision, last poll time, last error … (what /api/v1/status shows). */
  sourceStatus(): string {
    return this.tagged('s', 'source');
  }

  // ---- results ----
  /** Hash: task → JSON status of (agent, task); TTL refreshed on write. */
  taskStatus(agent: string): string {
    return this.a(agent, 'status');
  }
  /** Hash: task → JSON of the open drift episode (alerts sent once per episode). */
  driftEpisodes(agent: string): string {
    return this.a(agent, 'drift');
  }
  /** Sorted set: `agent\0task` → ms of every (agent, task) whose last status is drifted or failing (GET /drift). */
  statusProblems(): string {
    return this.tagged('p', 'problems');
  }
  /** Hash: one dispatched instruction (agent, tasks, deadline) until its results are in. */
  instruction(instructionId: string): string {
    return `${this.prefix}:instr:${instructionId}`;
  }

  // ---- events ----
  // Index members are `eventSortKey` strings (time, agent, id) in score-0 sorted sets, so Redis
  // orders them by bytes and cursors are exclusive lex bounds (docs/events.md).
  /** Sorted set per agent: event sort keys, trimmed to the per-agent bound. */
  agentEvents(agent: string): string {
    return this.a(agent, 'events');
  }
  /** Sorted set per task: event sort keys (which name the agent), bounded. */
  taskEvents(task: string): string {
    return `${this.prefix}:{t:${task}}:events`;
  }
  /** Sorted set of all events' sort keys, bounded. */
  allEvents(): string {
    return this.tagged('e', 'events');
  }
  /** String: one event JSON, with TTL. Unused by the Redis event store, which uses agentEvent. */
  event(id: string): string {
    return `${this.prefix}:ev:${id}`;
  }
  /**
   * String: one event JSON, with TTL, beside its agent's index (same hash tag) so one script can
   * write it and delete what the per-agent bound trims.
   */
  agentEvent(agent: string, id: string): string {
    return this.a(agent, `ev:${id}`);
  }

  // ---- live output ----
  /** Pub/sub channel for one execution's live output. */
  outputChannel(executionId: string): string {
    return `${this.prefix}:out:${executionId}`;
  }
  /** List: capped replay buffer of one execution's output lines, with TTL. */
  outputBuffer(executionId: string): string {
    return `${this.prefix}:outbuf:${executionId}`;
  }

  /** String: end (ms) of the last window the drift tick scheduled. */
  driftCursor(): string {
    return this.tagged('s', 'drift-cursor');
  }
  /** String (SET NX PX): held while one poll runs, so polls are single-flight across replicas. */
  pollLock(): string {
    return this.tagged('s', 'poll-lock');
  }

  // ---- manual reconciles ----
  reconcileRun(id: string): string {
    return `${this.prefix}:run:${id}`;
  }

  // ---- metrics ----
  /**
   * Hash: one cluster-wide metric family (shared/metrics.ts), incremented by reconcilers and read
   * by every gateway's /metrics. All families share one hash tag: a flush is one pipeline to one node.
   */
  metric(family: string): string {
    return `{${this.prefix}:m}:metric:${family}`;
  }
}
