import type { AgentConnection } from './agent-connection.js';

/** Every open socket, and the one session per agent name this gateway serves. */
export class SessionTable {
  private readonly open = new Set<AgentConnection>();
  private readonly byName = new Map<string, AgentConnection>();

  add(conn: AgentConnection): void {
    this.open.add(conn);
  }

  /** Claim `name` for `conn`; returns the connection that held it before, if another. */
  claim(name: string, conn: AgentConnection): AgentConnection | null {
    const previous = this.byName.get(name);
    this.byName.set(name, conn);
    return previous && previous !== conn ? previous : null;
  }

  get(name: string): AgentConnection | null {
    return this.byName.get(name) ?? null;
  }

  remove(conn: AgentConnection): void {
    this.open.delete(conn);
    const name = conn.entry?.name;
    if (name !== undefined && this.byName.get(name) === conn) this.byName.delete(name);
  }

  all(): AgentConnection[] {
    return [...this.open];
  }

  get size(): number {
    return this.open.size;
  }

  get agents(): number {
    return this.byName.size;
  }
}
