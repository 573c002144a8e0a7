/** The result ids a gateway remembers as enqueued, to ack a re-send without a second job. */

/**
 * (agent, result id) pairs, the newest `capacity` to 2 × `capacity` of them: a full generation
 * becomes the old one and the one before is dropped whole. No per-id eviction and no joined key
 * strings: a cycle of a 10,000-agent fleet adds 200,000 ids.
 */
export class RecentResultIds {
  private current = new Map<string, Set<string>>();
  private previous = new Map<string, Set<string>>();
  private size = 0;

  constructor(private readonly capacity: number) {}

  has(agent: string, id: string): boolean {
    return this.current.get(agent)?.has(id) === true || this.previous.get(agent)?.has(id) === true;
  }

  add(agent: string, id: string): void {
    if (this.current.get(agent)?.has(id)) return;
    if (this.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Map();
      this.size = 0;
    }
    const ids = this.current.get(agent);
    if (ids) ids.add(id);
    else this.current.set(agent, new Set([id]));
    this.size++;
  }
}
