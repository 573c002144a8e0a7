/**
 * The in-process twin of the live output: replay lists capped like Redis's (no TTL), and
 * listeners called asynchronously, as a subscriber connection would.
 */
import { OUTPUT_BUFFER_LINES, type OutputLog, type StreamRecord } from './output.js';

export class MemoryOutputLog implements OutputLog {
  private readonly lists = new Map<string, string[]>();
  private readonly listeners = new Map<string, Set<(text: string) => void>>();

  constructor(private readonly o: { bufferLines?: number } = {}) {}

  async append(records: readonly StreamRecord[]): Promise<void> {
    const lines = this.o.bufferLines ?? OUTPUT_BUFFER_LINES;
    for (const r of records) {
      const json = JSON.stringify(r);
      const list = this.lists.get(r.execution_id) ?? [];
      list.push(json);
      if (list.length > lines) list.splice(0, list.length - lines);
      this.lists.set(r.execution_id, list);
      const listeners = [...(this.listeners.get(r.execution_id) ?? [])];
      setImmediate(() => {
        for (const listener of listeners) listener(json);
      });
    }
  }

  async replay(executionId: string, lastOnly = false): Promise<string[]> {
    const list = this.lists.get(executionId) ?? [];
    return lastOnly ? list.slice(-1) : [...list];
  }

  async subscribe(executionId: string, listener: (text: string) => void): Promise<() => void> {
    const set = this.listeners.get(executionId) ?? new Set();
    this.listeners.set(executionId, set);
    const own = (text: string) => listener(text);
    set.add(own);
    return () => {
      set.delete(own);
    };
  }
}
