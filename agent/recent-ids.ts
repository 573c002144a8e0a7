/**
 * A bounded set of ids remembering insertion order: the agent keeps the instruction ids it has
 * accepted so a re-delivered instruction (BullMQ is at-least-once) is refused instead of run twice.
 * Bounded so a long-lived agent does not grow without limit; the oldest ids go first, and by then
 * the gateway side has long stopped re-delivering them.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {
    if (capacity < 1) throw new Error('RecentIds capacity must be at least 1');
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Adds `id`; returns false if it was already present. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      // A Set iterates in insertion order, so the first key is the oldest.
      const oldest = this.ids.values().next();
      if (!oldest.done) this.ids.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}
