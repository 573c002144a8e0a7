/**
 * The code of one hcl2json worker thread and the messages it exchanges with ParserPool.
 *
 * The worker runs as `eval` code, plain CommonJS JavaScript, not as a module file: it then loads
 * the same way from dist/ and under tsx (no loader in the worker, no .ts/.js path juggling), and
 * starts without tsx's cost. It needs nothing of Fluke's own code: it instantiates hcl2json's Go
 * program from the WebAssembly.Module the pool compiled once (workers share its machine code),
 * answers `parse` requests in order, and reports the Go runtime's exit (a crash) with its output.
 */

/** Pool → worker. */
export type ToWorker =
  | { type: 'module'; module: WebAssembly.Module }
  | { type: 'parse'; id: number; file: string; text: string };

/** Worker → pool. `error` is hcl2json's own message (a syntax error, usually). */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; json: string }
  | { type: 'result'; id: number; error: string }
  | { type: 'exit'; code: number; output: string };

export interface WorkerData {
  /** Absolute path of hcl2json's wasm/bridge_wasm_exec.js (defines globalThis.Go). */
  bridge: string;
  /** Environment of the Go program (GOGC). */
  env: Record<string, string>;
}

export const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const realFs = require('node:fs');
require(workerData.bridge);

// The Go runtime writes through fs.writeSync(1|2): keep the tail for a crash report instead.
let output = '';
const decoder = new TextDecoder();
globalThis.fs = Object.create(realFs, {
  writeSync: {
    value(fd, buf) {
      if (fd !== 1 && fd !== 2) return realFs.writeSync(fd, buf);
      output = (output + decoder.decode(buf)).slice(-2000);
      return buf.length;
    },
  },
});

const root = {};
globalThis.__parse_terraform_config_wasm__ = root;
let resolveReady;
const ready = new Promise((resolve) => { resolveReady = resolve; });

async function start(module) {
  const go = new globalThis.Go();
  go.env = workerData.env;
  go.exit = (code) => {
    parentPort.postMessage({ type: 'exit', code, output });
    process.exit(1);
  };
  const instance = await WebAssembly.instantiate(module, go.importObject);
  void go.run(instance);
  if (typeof root.parse !== 'function') throw new Error('hcl2json registered no parse function');
  resolveReady();
  parentPort.postMessage({ type: 'ready' });
}

function parse(m) {
  let reply = null;
  root.parse(m.file, m.text, (err, json) => {
    reply = err ? { type: 'result', id: m.id, error: String(err) } : { type: 'result', id: m.id, json };
  });
  parentPort.postMessage(reply ?? { type: 'result', id: m.id, error: 'hcl2json gave no answer' });
}

parentPort.on('message', (m) => {
  if (m.type === 'module') {
    start(m.module).catch((err) => process.nextTick(() => { throw err; }));
  } else if (m.type === 'parse') {
    void ready.then(() => parse(m));
  }
});
`;
