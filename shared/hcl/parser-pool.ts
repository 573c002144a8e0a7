/**
 * hcl2json in a small pool of worker threads. hcl2json is Go compiled to WASM, single-threaded
 * and the bulk of a cold manifest compile, so it runs beside this thread, which meanwhile scans,
 * converts and evaluates (and, with more than two cores, two workers parse side by side). A worker also
 * contains hcl2json's failures: a parse that runs past its timeout, or a Go runtime that dies
 * (which in-thread would leave every later parse of the process broken), fails that one file
 * with an HclParserFailure and the worker is replaced.
 *
 * The WASM module is compiled once here and handed to every worker (they share its machine code,
 * and V8's optimised tier-up of it). Workers start lazily, are unref'd while idle so they never
 * keep a process alive, and if they cannot start at all the pool parses in this thread instead.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { gunzip } from 'node:zlib';
import { errorMessage } from '../errors.js';
import { type FromWorker, type ToWorker, WORKER_SOURCE, type WorkerData } from './parser-worker.js';

/** hcl2json did not answer: it ran past the timeout or its runtime died. Not a syntax error. */
export class HclParserFailure extends Error {
  override name = 'HclParserFailure';
}

/** hcl2json's answer: its JSON, or its error message (`FILE:L,C-L,C: summary; detail`). */
export type RawParse = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

export interface ParserPoolOptions {
  /**
   * Worker threads. Default: 1 on up to 2 cores, else 2. Measured on 2 cores: two workers each
   * pay hcl2json's WASM warm-up (Go runtime start, baseline code, V8's optimising tier-up on
   * background threads) and end up slower on a cold compile than one worker beside this thread.
   */
  size?: number;
  /** Longest a single parse may run (default 30 s; the token limit keeps real files far below). */
  timeoutMs?: number;
  /** Longest a worker may take to start, WASM included (default 60 s). */
  startTimeoutMs?: number;
  /** Environment of the Go program in each worker. */
  env?: Record<string, string>;
  /** Replaces the worker's code (tests). */
  source?: string;
}

interface Job {
  id: number;
  file: string;
  text: string;
  resolve: (r: RawParse) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  dead: boolean;
  queue: Job[];
  chars: number;
  timer: NodeJS.Timeout | null;
  /** The Go runtime's last output, sent when it exits. */
  output: string;
}

const require = createRequire(import.meta.url);
const hcl2jsonDir = (): string => dirname(require.resolve('@cdktf/hcl2json/package.json'));

let goModule: Promise<WebAssembly.Module> | null = null;
/** hcl2json's WASM, compiled once per process. */
function compileGoModule(): Promise<WebAssembly.Module> {
  goModule ??= (async () => {
    const gz = await readFile(join(hcl2jsonDir(), 'main.wasm.gz'));
    return WebAssembly.compile(await promisify(gunzip)(gz));
  })();
  return goModule;
}

type InThread = (file: string, text: string) => Promise<Record<string, unknown>>;
let inThreadParse: Promise<InThread> | null = null;
/** hcl2json's own API in this thread; imported on first use because importing it loads the WASM. */
export async function parseInThread(file: string, text: string): Promise<RawParse> {
  inThreadParse ??= import('@cdktf/hcl2json').then((m) => m.parse as InThread);
  const parse = await inThreadParse;
  try {
    return { ok: true, value: await parse(file, text) };
  } catch (err) {
    return { ok: false, message: errorMessage(err) };
  }
}

export class ParserPool {
  readonly size: number;
  readonly timeoutMs: number;
  readonly startTimeoutMs: number;
  private readonly env: Record<string, string>;
  private readonly source: string;
  private slots: Slot[] = [];
  private nextId = 1;
  /** Why workers are not used (they could not start); parsing happens in this thread. */
  brokenReason: string | null = null;
  /** Workers started over the pool's life (a replaced worker counts again). */
  started = 0;

  constructor(options: ParserPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? (availableParallelism() > 2 ? 2 : 1));
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    this.env = options.env ?? {};
    this.source = options.source ?? WORKER_SOURCE;
  }

  /** Parses `text` (the content of `file`); rejects only with HclParserFailure. */
  parse(file: string, text: string): Promise<RawParse> {
    if (this.brokenReason !== null) return parseInThread(file, text);
    return new Promise<RawParse>((resolve, reject) => {
      this.dispatch({ id: this.nextId++, file, text, resolve, reject });
    });
  }

  /** Stops every worker; a later parse starts new ones. */
  async close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => this.kill(s)));
    for (const s of slots) for (const job of s.queue) inThread(job);
  }

  private dispatch(job: Job): void {
    if (this.brokenReason !== null) {
      inThread(job);
      return;
    }
    let slot = this.slots.reduce<Slot | null>((a, s) => (a && a.chars <= s.chars ? a : s), null);
    if (!slot || (slot.queue.length > 0 && this.slots.length < this.size)) slot = this.spawn();
    if (!slot) {
      inThread(job);
      return;
    }
    slot.queue.push(job);
    slot.chars += job.text.length;
    slot.worker.ref();
    const message: ToWorker = { type: 'parse', id: job.id, file: job.file, text: job.text };
    slot.worker.postMessage(message);
    if (slot.ready && slot.queue.length === 1) this.arm(slot);
  }

  private spawn(): Slot | null {
    let worker: Worker;
    try {
      const workerData: WorkerData = {
        bridge: join(hcl2jsonDir(), 'wasm', 'bridge_wasm_exec.js'),
        env: this.env,
      };
      worker = new Worker(this.source, { eval: true, execArgv: [], workerData });
    } catch (err) {
      this.broken(`worker threads cannot start: ${errorMessage(err)}`);
      return null;
    }
    this.started++;
    const slot: Slot = { worker, ready: false, dead: false, queue: [], chars: 0, timer: null, output: '' };
    this.slots.push(slot);
    // Also bounds startup: a worker not ready within the timeout counts as one that cannot start.
    this.arm(slot);
    compileGoModule().then(
      (module) => {
        const message: ToWorker = { type: 'module', module };
        if (!slot.dead) worker.postMessage(message);
      },
      (err: unknown) => this.broken(`hcl2json's WASM did not load: ${errorMessage(err)}`),
    );
    let failure = '';
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (err) => {
      failure = errorMessage(err);
    });
    worker.on('exit', (code) => this.onExit(slot, failure || `exit code ${code}`));
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (slot.dead) return;
    if (m.type === 'ready') {
      slot.ready = true;
      this.disarm(slot);
      if (slot.queue.length > 0) this.arm(slot);
      else slot.worker.unref();
      return;
    }
    if (m.type === 'exit') {
      slot.output = m.output;
      return;
    }
    const job = slot.queue[0];
    if (!job || job.id !== m.id) return;
    slot.queue.shift();
    slot.chars -= job.text.length;
    this.disarm(slot);
    if (slot.queue.length > 0) this.arm(slot);
    else slot.worker.unref();
    if ('json' in m) job.resolve({ ok: true, value: JSON.parse(m.json) as Record<string, unknown> });
    else job.resolve({ ok: false, message: m.error });
  }

  private onExit(slot: Slot, reason: string): void {
    if (slot.dead) return;
    slot.dead = true;
    this.disarm(slot);
    this.slots = this.slots.filter((s) => s !== slot);
    if (!slot.ready) {
      this.broken(`the hcl2json worker did not start: ${reason}`);
      for (const job of slot.queue) this.dispatch(job);
      return;
    }
    const [head, ...rest] = slot.queue;
    const output = slot.output.trim().split('\n')[0] ?? '';
    head?.reject(new HclParserFailure(`the HCL parser crashed on this file (${output || reason})`));
    for (const job of rest) this.dispatch(job);
  }

  /** Starts the clock for the slot's first job (or for its startup). */
  private arm(slot: Slot): void {
    this.disarm(slot);
    slot.timer = setTimeout(() => this.onTimeout(slot), slot.ready ? this.timeoutMs : this.startTimeoutMs);
  }

  private disarm(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
  }

  private onTimeout(slot: Slot): void {
    slot.timer = null;
    if (slot.dead) return;
    this.slots = this.slots.filter((s) => s !== slot);
    void this.kill(slot);
    if (!slot.ready) {
      this.broken(`the hcl2json worker did not start within ${this.startTimeoutMs} ms`);
      for (const job of slot.queue) this.dispatch(job);
      return;
    }
    const [head, ...rest] = slot.queue;
    head?.reject(
      new HclParserFailure(`the HCL parser did not finish within ${this.timeoutMs} ms; it was stopped`),
    );
    for (const job of rest) this.dispatch(job);
  }

  private async kill(slot: Slot): Promise<void> {
    slot.dead = true;
    this.disarm(slot);
    await slot.worker.terminate();
  }

  private broken(reason: string): void {
    this.brokenReason ??= reason;
    for (const slot of this.slots) void this.kill(slot);
    const queued = this.slots.flatMap((s) => s.queue);
    this.slots = [];
    for (const job of queued) inThread(job);
  }
}

function inThread(job: Job): void {
  parseInThread(job.file, job.text).then(job.resolve, job.reject);
}

let shared: ParserPool | null = null;
/** The process's pool, created on first use. */
export function sharedParserPool(): ParserPool {
  shared ??= new ParserPool();
  return shared;
}
