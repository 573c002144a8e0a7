// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
/**
 * hcl2json in worker threads (shared/hcl/ParserPool.ts): the same results as in this thread, a
 * parse that hangs or a Go runtime that dies fails that one file and the worker is replaced, a
 * pool whose workers cannot start parses in this thread, and idle workers never keep a process up.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { HclParserFailure, ParserPool } from '../shared/hcl/parser-pool.js';
import { ManifestCompiler, type ManifestFile } from '../shared/manifest/compile.js';

const task = (n: number): string => `task "t${n}" {
  selector { match_labels = { role = "web" } }
  shell "s" {
    check   = "test -f /tmp/\${local.dir}/${n}"
    command = "touch %{ for d in ["a", "b"] }\${d}-${n} %{ endfor }"
  }
}
`;
const files: ManifestFile[] = [
  { path: 'a.fluke.hcl', content: `locals { dir = "x" }\n${task(1)}${task(2)}` },
  { path: 'b.fluke.hcl', content: task(3) + task(4) },
  { path: 'c.fluke.hcl', content: 'task "bad" {\n  shell "s" { check = "x" command = }\n}\n' },
  { path: 'd.fluke.hcl', content: Array.from({ length: 40 }, (_, i) => task(10 + i)).join('') },
];

/** A stand-in for hcl2json's worker: hangs on HANG, dies on CRASH, answers `{}` otherwise. */
const FAKE_WORKER = `
const { parentPort } = require('node:worker_threads');
let ready = false;
const waiting = [];
function parse(m) {
  if (m.text.includes('HANG')) for (;;) {}
  if (m.text.includes('CRASH')) {
    parentPort.postMessage({ type: 'exit', code: 2, output: 'fatal error: malloc deadlock\\n' });
    process.exit(2);
  }
  parentPort.postMessage({ type: 'result', id: m.id, json: '{"file":' + JSON.stringify(m.file) + '}' });
}
parentPort.on('message', (m) => {
  if (m.type !== 'module') return ready ? parse(m) : waiting.push(m);
  ready = true;
  parentPort.postMessage({ type: 'ready' });
  for (const w of waiting) parse(w);
});
`;

t.test('workers and this thread compile to the same result, errors included', async (t) => {
  const pool = new ParserPool({ size: 2 });
  t.teardown(() => pool.close());
  const viaPool = await new ManifestCompiler(undefined, { parser: pool }).compile(files);
  const inThread = await new ManifestCompiler(undefined, { parser: 'in-thread' }).compile(files);
  t.same(viaPool, inThread);
  t.equal(viaPool.state.tasks.length, 44);
  t.match(viaPool.errors, [{ file: 'c.fluke.hcl', line: 2 }]);
  t.equal(pool.started, 2, 'two workers parsed');
  t.equal(pool.brokenReason, null);
});

t.test('a parse past its timeout fails that file only; the worker is replaced', async (t) => {
  const pool = new ParserPool({ size: 1, timeoutMs: 300, source: FAKE_WORKER });
  t.teardown(() => pool.close());
  const results = await Promise.allSettled([
    pool.parse('one.hcl', 'a = 1'),
    pool.parse('hang.hcl', 'HANG'),
    pool.parse('two.hcl', 'b = 2'),
  ]);
  t.same(results[0], { status: 'fulfilled', value: { ok: true, value: { file: 'one.hcl' } } });
  t.equal(results[1]?.status, 'rejected');
  const reason = results[1]?.status === 'rejected' ? results[1].reason : null;
  t.ok(reason instanceof HclParserFailure);
  t.match(String(reason), /did not finish within 300 ms/);
  t.same(results[2], { status: 'fulfilled', value: { ok: true, value: { file: 'two.hcl' } } });
  t.equal(pool.started, 2);
});

t.test('a worker whose Go runtime dies fails that file; the next parse works', async (t) => {
  const pool = new ParserPool({ size: 1, source: FAKE_WORKER });
  t.teardown(() => pool.close());
  t.same(await pool.parse('one.hcl', 'a = 1'), { ok: true, value: { file: 'one.hcl' } });
  await t.rejects(pool.parse('crash.hcl', 'CRASH'), {
    name: 'HclParserFailure',
    message: /crashed on this file \(fatal error: malloc deadlock\)/,
  });
  t.same(await pool.parse('two.hcl', 'b = 2'), { ok: true, value: { file: 'two.hcl' } });
  t.equal(pool.started, 2);
});

t.test('the real hcl2json dying on input the pre-checks would refuse is contained', async (t) => {
  const pool = new ParserPool({ size: 1 });
  t.teardown(() => pool.close());
  // 100,000 unary minuses: loadFile refuses them (nestingHazard); hcl2json overflows its stack
  // (~3 s and ~600 MB in the worker, all of it released when the worker is replaced).
  await t.rejects(pool.parse('deep.hcl', `a = ${'-'.repeat(100_000)}1\n`), {
    name: 'HclParserFailure',
    message: /crashed on this file/,
  });
  t.same(await pool.parse('ok.hcl', 'a = "x${1}"'), { ok: true, value: { a: 'x1' } });
});

t.test('a compile reports a parser failure as that file’s error and goes on', async (t) => {
  const pool = new ParserPool({ size: 1, timeoutMs: 1 });
  t.teardown(() => pool.close());
  const big = files[3] as ManifestFile;
  const result = await new ManifestCompiler(undefined, { parser: pool }).compile([big]);
  t.match(result.errors, [
    { file: 'd.fluke.hcl', line: 1, message: /^could not parse: the HCL parser did not finish within 1 ms/ },
  ]);
  const again = await new ManifestCompiler().compile([files[0] as ManifestFile, big]);
  t.same(again.errors, []);
});

t.test('workers that cannot start: parsing falls back to this thread', async (t) => {
  const pool = new ParserPool({ size: 2, source: 'throw new Error("no workers today")' });
  t.teardown(() => pool.close());
  const result = await new ManifestCompiler(undefined, { parser: pool }).compile(files);
  t.equal(result.state.tasks.length, 44);
  t.match(pool.brokenReason, /did not start: no workers today/);
});

t.test('idle workers do not keep a process alive', async (t) => {
  const compile = fileURLToPath(new URL('../shared/manifest/compile.ts', import.meta.url));
  const code = `
    const { ManifestCompiler } = await import(${JSON.stringify(compile)});
    const r = await new ManifestCompiler().compile([{ path: 'a.hcl', content: 'task "x" {\\n selector { match_labels = {} }\\n shell "s" {\\n check = "true"\\n command = "true"\\n }\\n}\\n' }]);
    process.stdout.write(String(r.state.tasks.length));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  t.equal(status, 0, 'exited on its own');
  t.equal(out, '1');
});
