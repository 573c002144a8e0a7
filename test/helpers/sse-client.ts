/**
 * A minimal server-sent-events reader over fetch, for stream tests: events arrive in order through
 * next(); `closed` resolves when the server ends the response.
 */
export interface SseEvent {
  event: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** The next event (comments skipped); rejects if the stream closes first or after timeoutMs. */
  next(timeoutMs?: number): Promise<SseEvent>;
  /** Comments received (`: ping` …). */
  comments: string[];
  closed: Promise<void>;
  abort(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  const queue: SseEvent[] = [];
  const comments: string[] = [];
  let waiter: (() => void) | null = null;
  let done = false;
  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  const closed = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done: over, value } = await reader.read();
        if (over) break;
        buffer += decoder.decode(value, { stream: true });
        for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) queue.push({ event, data: data.join('\n') });
        }
        wake();
      }
    } catch {
      // aborted by us
    } finally {
      done = true;
      wake();
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    comments,
    closed,
    abort: () => controller.abort(),
    async next(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = queue.shift();
        if (e) return e;
        if (done) throw new Error('stream closed');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no event in time');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiter = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}
