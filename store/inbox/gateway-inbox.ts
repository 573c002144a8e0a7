import { coerceError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../redis/client.js';

/** Entries kept per inbox (approximate trim): far beyond what a gateway should ever lag. */
export const INBOX_MAXLEN = 100_000;
/** An inbox nobody writes to for this long is deleted (its gateway is gone). */
export const INBOX_TTL_MS = 15 * 60_000;

// Delivers only to a gateway that announced itself recently (it reads its inbox); otherwise the
// caller reports the instruction undeliverable at once instead of waiting for a deadline.
// KEYS: gateways hash, inbox. ARGV: gateway id, oldest acceptable announce (ms), maxlen, ttl, then
// one or more texts: one stream entry whose fields are `m` → text, in order.
const SEND = `
if ARGV[2] ~= '' then
  local seen = redis.call('HGET', KEYS[1], ARGV[1])
  if not seen or tonumber(seen) < tonumber(ARGV[2]) then return 0 end
end
local fields = {}
for i = 5, #ARGV do
  fields[#fields + 1] = 'm'
  fields[#fields + 1] = ARGV[i]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

/** Texts per stream entry when sends are batched (InboxBatcher), and the entry's byte budget. */
export const INBOX_BATCH_TEXTS = 64;
const INBOX_BATCH_BYTES = 512 * 1024;
/** Entries per XREAD: with batched entries, at most 32 × 512 KiB in one reply. */
const READ_COUNT = 32;

interface InboxCommands {
  flukeInboxSend(gateways: string, inbox: string, ...args: Array<string | number>): Promise<number>;
}

/**
 * Defines the send script on a client. Call it when an auto-pipelined client is made, before
 * first use: ioredis can fail when a command is defined on a client while an auto-pipeline is
 * being filled (redis/ioredis#1931).
 */
export function defineInboxCommand(redis: RedisClient): void {
  const r = redis as RedisClient & Partial<InboxCommands>;
  if (typeof r.flukeInboxSend !== 'function')
    redis.defineCommand('flukeInboxSend', { numberOfKeys: 2, lua: SEND });
}

/**
 * Appends a message (or several, as one entry) to a gateway's inbox. With `aliveSince` (epoch ms),
 * only if that gateway announced itself since then; returns whether it was written.
 */
export async function sendToGateway(
  redis: RedisClient,
  keys: Keys,
  gatewayId: string,
  text: string | readonly string[],
  aliveSince: number | null = null,
): Promise<boolean> {
  defineInboxCommand(redis);
  const written = await (redis as RedisClient & InboxCommands).flukeInboxSend(
    keys.gateways(),
    keys.gatewayInbox(gatewayId),
    gatewayId,
    aliveSince === null ? '' : String(aliveSince),
    INBOX_MAXLEN,
    INBOX_TTL_MS,
    ...(typeof text === 'string' ? [text] : text),
  );
  return written === 1;
}

interface PendingSend {
  texts: string[];
  bytes: number;
  senders: Array<{ resolve(written: boolean): void; reject(err: unknown): void }>;
}

/**
 * Coalesces the sends of one event-loop turn per gateway into entries of up to INBOX_BATCH_TEXTS
 * texts (INBOX_BATCH_BYTES): a fan-out of 500 agents to one gateway is a handful of script calls
 * and stream entries instead of 500. Each `send` resolves like `sendToGateway` for its text.
 */
export class InboxBatcher {
  private readonly pending = new Map<string, PendingSend[]>();
  private scheduled = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    /** A gateway that has not announced itself for this long gets nothing (null: no check). */
    private readonly staleMs: number | null,
  ) {
    defineInboxCommand(redis);
  }

  send(gatewayId: string, text: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const batches = this.pending.get(gatewayId) ?? [];
      let last = batches.at(-1);
      const bytes = Buffer.byteLength(text);
      if (!last || last.texts.length >= INBOX_BATCH_TEXTS || last.bytes + bytes > INBOX_BATCH_BYTES) {
        last = { texts: [], bytes: 0, senders: [] };
        batches.push(last);
        this.pending.set(gatewayId, batches);
      }
      last.texts.push(text);
      last.bytes += bytes;
      last.senders.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const aliveSince = this.staleMs === null ? null : Date.now() - this.staleMs;
    for (const [gatewayId, batches] of this.pending) {
      for (const b of batches) {
        sendToGateway(this.redis, this.keys, gatewayId, b.texts, aliveSince).then(
          (written) => {
            for (const s of b.senders) s.resolve(written);
          },
          (err: unknown) => {
            for (const s of b.senders) s.reject(err);
          },
        );
      }
    }
    this.pending.clear();
  }
}

type XReadReply = Array<[string, Array<[string, string[]]>]> | null;

/**
 * Reads this gateway's inbox on its own connection (XREAD BLOCK), from the moment it started, in
 * order. A Redis outage pauses it; it resumes from the last entry it read (after a FLUSHALL or a
 * restart without persistence the stream starts over with later ids, so nothing new is skipped).
 */
export class InboxReader {
  private stopped = false;
  private lastId = '';
  private loop: Promise<void> | null = null;
  private failing = false;

  constructor(
    private readonly conn: RedisClient,
    private readonly key: string,
    private readonly onMessage: (text: string) => void,
    private readonly logger: Logger,
    /** Called when reading works again after a failure (the gateway re-announces itself). */
    private readonly onRecovered: () => void = () => {},
    private readonly blockMs = 2000,
  ) {}

  async start(): Promise<void> {
    // ioredis re-sends a blocked XREAD after reconnecting by itself, so an outage shows up as a
    // closed connection rather than a failed read.
    this.conn.on('close', () => {
      if (!this.stopped && !this.failing) {
        this.failing = true;
        this.logger.warn({ inbox: this.key }, 'instruction inbox connection lost');
      }
    });
    this.conn.on('ready', () => this.recovered());
    // Server time, not ours: entries added from now on have ids at or above `<now ms>-0`. XREAD
    // returns ids strictly above the one given, so start just below that: the first entry of
    // this very millisecond must not be skipped (a send right after start could get `<now>-0`).
    const [seconds, micros] = await this.conn.time();
    this.lastId = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1}-18446744073709551615`;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const reply = (await this.conn.xread(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          this.key,
          this.lastId,
        )) as XReadReply;
        this.recovered();
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            this.lastId = id;
            // One text per `m` field: a batched entry holds several, in order.
            for (let i = 1; i < fields.length; i += 2) {
              const text = fields[i];
              if (typeof text === 'string') this.onMessage(text);
            }
          }
        }
      } catch (err) {
        if (this.stopped) return;
        if (!this.failing) {
          this.failing = true;
          this.logger.warn({ err: coerceError(err).message }, 'instruction inbox unreadable');
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private recovered(): void {
    if (!this.failing || this.stopped) return;
    this.failing = false;
    this.logger.info({ inbox: this.key }, 'instruction inbox readable again');
    this.onRecovered();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.conn.disconnect();
    await this.loop?.catch(() => {});
  }
}
