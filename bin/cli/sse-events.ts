/**
 * Server-sent events out of a stream of text chunks, for `fluke logs -f`. The parsing (chunks
 * split anywhere, CRLF, BOM, comments, multi-line data) is eventsource-parser's; this only turns
 * its callback into an async iterable the command can `for await` and leave early.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseEvent {
  /** The `event:` field; "message" when none was given, as in the browser's EventSource. */
  event: string;
  /** The `data:` lines joined by "\n". */
  data: string;
  /** The event's `id:` field, or null. */
  id: string | null;
}

export async function* sseEvents(chunks: AsyncIterable<string>): AsyncGenerator<SseEvent> {
  const ready: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (m) => ready.push(m) });
  for await (const chunk of chunks) {
    parser.feed(chunk);
    // An event still unterminated when the stream ends is never dispatched, as the standard says.
    for (const m of ready.splice(0)) yield { event: m.event ?? 'message', data: m.data, id: m.id ?? null };
  }
}
