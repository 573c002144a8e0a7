/**
 * Which Redis writes a stretch of fuzzing caused. A MONITOR connection sees every command (those
 * run inside Lua scripts too); a command counts as a write when Redis flags it `write` (COMMAND
 * INFO), or it publishes, or it runs a script or function. Writes are reduced to a shape (command
 * and key, with agent names, ids and numbers blanked), and shapes that a control run explains
 * (the gateway idle, well-behaved agents registering and leaving) are taken away: what is left
 * was caused by the frames under test.
 */
import { connect, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { waitFor } from '../system.js';

export interface WriteRecord {
  shape: string;
  command: string;
  args: string[];
}

const ALWAYS = new Set([
  'publish',
  'spublish',
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'fcall',
  'fcall_ro',
]);

/** `fz-…` agent names, UUIDs, hex ids and digit runs blanked so shapes compare across sessions. */
export function shapeOf(command: string, args: string[]): string {
  // EVALSHA sha numkeys key…: the script and its first key; anything else: the first argument.
  const isScript = command.startsWith('eval') || command.startsWith('fcall');
  const key = isScript ? `${args[0] ?? ''} ${args[2] ?? ''}` : (args[0] ?? '');
  const blank = key
    .replace(/fz-[A-Za-z0-9._-]+/g, '<agent>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\d+/g, 'N');
  return `${command} ${blank}`;
}

/** The quoted arguments of one MONITOR line (`+ts [db addr] "cmd" "arg" …`), unescaped enough to read. */
export function monitorArgs(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"/g)) out.push((m[1] ?? '').replace(/\\(["\\])/g, '$1'));
  return out;
}

export class WriteMonitor {
  private socket: Socket | null = null;
  private readonly flags = new Map<string, boolean>();
  private seen: Array<{ command: string; args: string[] }> = [];

  /** `client` runs the marker and COMMAND INFO; MONITOR gets its own raw connection to `port`. */
  constructor(
    private readonly client: Redis,
    private readonly port: number,
  ) {}

  async start(): Promise<void> {
    // A raw socket: MONITOR lines are simple strings, and ioredis' monitor mode can mistake a
    // line that arrives before it switched modes for a reply.
    const socket = connect(this.port, '127.0.0.1');
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl = buffered.indexOf('\r\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        if (line.startsWith('+') && line !== '+OK') {
          const [command = '', ...rest] = monitorArgs(line);
          this.seen.push({ command: command.toLowerCase(), args: rest.map((a) => a.slice(0, 300)) });
        }
        nl = buffered.indexOf('\r\n');
      }
    });
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    socket.write('MONITOR\r\n');
    this.socket = socket;
    // MONITOR is asynchronous with the commands it reports: a marker tells when it has caught up.
    await this.mark();
  }

  /** Sends a marker command and waits until MONITOR has reported it (everything before it is in). */
  async mark(): Promise<void> {
    const marker = `fuzz-marker-${Math.random().toString(36).slice(2)}`;
    await this.client.echo(marker);
    await waitFor(
      'MONITOR to report the marker',
      async () => this.seen.some((s) => s.command === 'echo' && s.args[0] === marker),
      (seen) => seen,
      30_000,
    );
  }

  /** Everything seen since the last take(), as writes. */
  async take(): Promise<WriteRecord[]> {
    await this.mark();
    const seen = this.seen;
    this.seen = [];
    const out: WriteRecord[] = [];
    for (const { command, args } of seen) {
      if (await this.isWrite(command)) out.push({ shape: shapeOf(command, args), command, args });
    }
    return out;
  }

  private async isWrite(command: string): Promise<boolean> {
    if (ALWAYS.has(command)) return true;
    const known = this.flags.get(command);
    if (known !== undefined) return known;
    const info = (await this.client.call('COMMAND', 'INFO', command)) as unknown[];
    const entry = info[0] as unknown[] | null;
    const flags = Array.isArray(entry?.[2]) ? (entry[2] as unknown[]).map(String) : [];
    const write = flags.includes('write');
    this.flags.set(command, write);
    return write;
  }

  stop(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}

/**
 * The process's own schedules, whatever the agents do: BullMQ job schedulers (the Git poll, the
 * drift tick) firing and re-arming, which name `repeat` in a key or job id, and the poll queue
 * (no agent message adds a poll job). They fire on their own clock, so a control run may miss them.
 */
const BACKGROUND = /repeat|:poll:/;

/** Writes whose shape the control run does not explain and that are not the background schedules. */
export function unexplained(writes: WriteRecord[], control: Set<string>): WriteRecord[] {
  return writes.filter((w) => !control.has(w.shape) && !BACKGROUND.test(w.args.join(' ')));
}
