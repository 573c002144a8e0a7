/**
 * Server-sent events out of a stream of text chunks, for `fluke logs -f`. The parsing (chunks
 * split anywhere, comments, multi-line data) is eventsource-parser's; this turns its callback
 * into an async iterable the command can `for await` and leave early, and evens out BOMs and
 * line endings first (LineEndings).
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
  const lines = new LineEndings();
  for await (const chunk of chunks) {
    parser.feed(lines.normalize(chunk));
    // An event still unterminated when the stream ends is never dispatched, as the standard says.
    yield* ready.splice(0).map(toEvent);
  }
  parser.feed(lines.end());
  yield* ready.splice(0).map(toEvent);
}

const toEvent = (m: EventSourceMessage): SseEvent => ({
  event: m.event ?? 'message',
  data: m.data,
  id: m.id ?? null,
});

/**
 * eventsource-parser 3 (the line that supports Node 20; 4 needs Node 22) keeps a leading BOM in
 * the first field name and does not end lines at a lone CR, both of which the standard allows. So
 * the stream is handed over without its BOM and with every line ending as LF; a CR at the end of a
 * chunk waits for the next one, which may start with its LF.
 */
class LineEndings {
  private started = false;
  private cr = false;

  normalize(chunk: string): string {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.cr) text = `\r${text}`;
    this.cr = text.endsWith('\r');
    if (this.cr) text = text.slice(0, -1);
    return text.replace(/\r\n?/g, '\n');
  }

  end(): string {
    const rest = this.cr ? '\n' : '';
    this.cr = false;
    return rest;
  }
}
