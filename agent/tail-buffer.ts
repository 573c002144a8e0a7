/**
 * Keeps only the last `maxBytes` of a stream of text, so a step that prints gigabytes costs the
 * agent a few KiB. Trimming happens on whole chunks first and then inside the oldest one.
 */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private truncated = false;

  constructor(private readonly maxBytes = 4096) {}

  push(data: string | Buffer): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length === 0) return;
    this.chunks.push(buf);
    this.bytes += buf.length;
    while (this.bytes > this.maxBytes && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.bytes - this.maxBytes;
      this.truncated = true;
      if (first.length <= excess) {
        this.chunks.shift();
        this.bytes -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.bytes -= excess;
      }
    }
  }

  /** The kept text; a cut inside a multi-byte character becomes U+FFFD rather than an error. */
  toString(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.truncated ? text.replace(/^\uFFFD+/, '') : text;
  }

  get wasTruncated(): boolean {
    return this.truncated;
  }
}
