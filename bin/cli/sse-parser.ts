/**
 * A server-sent-events parser (the WHATWG "event stream interpretation"), pure: text chunks in,
 * complete events out. Chunks may split anywhere, including between the CR and LF of a CRLF.
 * An event still unterminated when the stream ends is discarded, as the standard says.
 */

export interface SseEvent {
  /** The `event:` field; "message" when none was given. */
  event: string;
  /** The `data:` lines joined by "\n". */
  data: string;
  /** The last `id:` seen so far in the stream, or null. */
  id: string | null;
}

export class SseParser {
  private buffer = '';
  private started = false;
  /** The previous chunk ended in CR: an LF at the start of the next one belongs to it. */
  private afterCr = false;
  private type = '';
  private data: string[] = [];
  private lastId: string | null = null;
  /** The last `retry:` value in ms, for a client that reconnects. */
  retryMs: number | null = null;

  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    if (this.afterCr && text.startsWith('\n')) text = text.slice(1);
    this.afterCr = false;
    this.buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buffer.slice(start, i);
      if (c === '\r') {
        if (i + 1 === this.buffer.length) this.afterCr = true;
        else if (this.buffer[i + 1] === '\n') i++;
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon >= 0 ? line.slice(0, colon) : line;
    let value = colon >= 0 ? line.slice(colon + 1) : '';
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
      // Unknown fields are ignored.
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    const type = this.type;
    const data = this.data;
    this.type = '';
    this.data = [];
    if (data.length === 0) return null;
    return { event: type || 'message', data: data.join('\n'), id: this.lastId };
  }
}
