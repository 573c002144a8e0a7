/**
 * The import rule, the file-size rule and the function-size rule, checked over the real source
 * tree. `checkArchitecture` is
 * pure (a list of files in, a list of violations out) so the first tests can prove on a synthetic
 * tree that it catches what it must; the last test runs it on the repository.
 *
 * The rule: gateway/, reconciler/ and console/ import only shared/ and the store layer (store/);
 * agent/ only shared/; shared/ nothing but itself; store/ shared/ and itself; only store/ touches
 * ioredis or bullmq (type-only imports included); bin/ wires everything, and testkit/, test/ and
 * bench/ may reach anywhere — except that bench/ and testkit/ never import test/ (benches share
 * testkit/ with the tests instead).
 *
 * The size rules, for product code (not testkit/, test/, bench/): no file over 300 lines unless
 * its first comment block has a line starting "Over 300 lines because", and no function body
 * (braces included) over 100 lines unless a comment right above it says "Over 100 lines because".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

export interface SourceFile {
  /** Repository-relative, with forward slashes: `gateway/gateway.ts`. */
  path: string;
  text: string;
}

export interface Violation {
  file: string;
  /** The import specifier as written, or a description for the size rule. */
  target: string;
  rule: string;
}

/** Folders whose files are checked; the first path segment names the component. */
export const COMPONENTS = [
  'shared',
  'store',
  'gateway',
  'console',
  'reconciler',
  'agent',
  'bin',
  'bench',
  'testkit',
] as const;
type Component = (typeof COMPONENTS)[number] | 'test';

/** The components each one may import (itself always). `null`: anything. */
const MAY_IMPORT: Record<Component, readonly Component[] | null> = {
  shared: [],
  store: ['shared'],
  gateway: ['shared', 'store'],
  reconciler: ['shared', 'store'],
  console: ['shared', 'store'],
  agent: ['shared'],
  bin: null,
  test: null,
  testkit: COMPONENTS.filter((c) => c !== 'testkit'),
  bench: COMPONENTS.filter((c) => c !== 'bench'),
};

/** Packages only the store layer (and the wiring, tests and benches) may import. */
const STORE_ONLY_PACKAGES = ['ioredis', 'bullmq'];
const MAY_IMPORT_STORE_PACKAGES: readonly Component[] = ['store', 'bin', 'testkit', 'test', 'bench'];
/** shared/ is pure domain: no I/O clients or servers. */
const SHARED_BANNED_PACKAGES = ['ioredis', 'bullmq', 'uWebSockets.js', 'simple-git', 'ws'];

/** Product code: what the size rule applies to. */
const PRODUCT: readonly Component[] = ['shared', 'store', 'gateway', 'console', 'reconciler', 'agent', 'bin'];
export const MAX_LINES = 300;
const SIZE_EXCUSE = /^Over 300 lines because/;
export const MAX_FUNCTION_LINES = 100;
const FUNCTION_EXCUSE = /Over 100 lines because/;

/** Every module specifier of a file: static and type-only imports, re-exports, import(). */
export function importSpecifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

function componentOf(path: string): Component | null {
  const top = path.split('/')[0] ?? '';
  if (top === 'test') return 'test';
  return (COMPONENTS as readonly string[]).includes(top) ? (top as Component) : null;
}

/** `@scope/name/deep` → `@scope/name`, `name/deep` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/** The first comment block (leading `/** … *\/` or `//` lines), one line per entry, markers stripped. */
function firstCommentLines(text: string): string[] {
  const trimmed = text.replace(/^#!.*\n/, '').trimStart();
  if (trimmed.startsWith('/*')) {
    const end = trimmed.indexOf('*/');
    return trimmed
      .slice(2, end < 0 ? undefined : end)
      .split('\n')
      .map((l) => l.replace(/^\s*\*+\s?/, '').trim());
  }
  const lines: string[] = [];
  for (const line of trimmed.split('\n')) {
    if (!line.trimStart().startsWith('//')) break;
    lines.push(line.replace(/^\s*\/\/+\s?/, '').trim());
  }
  return lines;
}

function importViolations(file: SourceFile, from: Component): Violation[] {
  const out: Violation[] = [];
  for (const spec of importSpecifiers(file.text)) {
    if (spec.startsWith('node:')) continue;
    if (spec.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(file.path), spec));
      const to = componentOf(target);
      if (to === from) continue;
      const allowed = MAY_IMPORT[from];
      if (allowed === null) continue;
      if (to === null)
        out.push({ file: file.path, target: spec, rule: `${from}/ imports outside the components` });
      else if (!allowed.includes(to))
        out.push({ file: file.path, target: spec, rule: `${from}/ must not import ${to}/` });
      continue;
    }
    const pkg = packageName(spec);
    if (STORE_ONLY_PACKAGES.includes(pkg) && !MAY_IMPORT_STORE_PACKAGES.includes(from))
      out.push({ file: file.path, target: spec, rule: `only store/ may import ${pkg}` });
    else if (from === 'shared' && SHARED_BANNED_PACKAGES.includes(pkg))
      out.push({ file: file.path, target: spec, rule: `shared/ must not import ${pkg}` });
  }
  return out;
}

function sizeViolation(file: SourceFile, from: Component): Violation | null {
  if (!PRODUCT.includes(from)) return null;
  const lines = file.text.split('\n').length - (file.text.endsWith('\n') ? 1 : 0);
  if (lines <= MAX_LINES) return null;
  if (firstCommentLines(file.text).some((l) => SIZE_EXCUSE.test(l))) return null;
  return { file: file.path, target: `${lines} lines`, rule: `product file over ${MAX_LINES} lines` };
}

/** A function-like node the wiring-function rule measures, and the node its comment sits on. */
interface MeasuredFunction {
  name: string;
  body: ts.Node;
  commented: ts.Node;
}

/**
 * Function declarations, methods, constructors, accessors, and function expressions or arrows
 * initialising a variable or class field: the units a reader takes in whole. Callbacks passed
 * inline count toward the function that holds them.
 */
function measuredFunction(node: ts.Node, source: ts.SourceFile): MeasuredFunction | null {
  const named = (n: ts.Node & { name?: ts.PropertyName | ts.BindingName }) =>
    n.name ? n.name.getText(source) : '(anonymous)';
  if (
    (ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)) &&
    node.body
  )
    return { name: named(node), body: node.body, commented: node };
  if (ts.isConstructorDeclaration(node) && node.body)
    return { name: 'constructor', body: node.body, commented: node };
  if ((ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node)) && node.initializer) {
    const init = node.initializer;
    if (!ts.isArrowFunction(init) && !ts.isFunctionExpression(init)) return null;
    // The comment above `const f = …` belongs to the whole statement, not to the declaration.
    const statement = ts.isVariableDeclaration(node) ? node.parent.parent : node;
    return { name: named(node), body: init.body, commented: statement };
  }
  return null;
}

function hasFunctionExcuse(text: string, node: ts.Node): boolean {
  const comments = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  return comments.some((c) => FUNCTION_EXCUSE.test(text.slice(c.pos, c.end)));
}

/** Every function whose body (braces included) spans more than MAX_FUNCTION_LINES lines. */
export function longFunctions(file: SourceFile): { name: string; line: number; lines: number }[] {
  const source = ts.createSourceFile(file.path, file.text, ts.ScriptTarget.Latest, true);
  const out: { name: string; line: number; lines: number }[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    const fn = measuredFunction(node, source);
    if (fn) {
      const first = lineOf(fn.body.getStart(source));
      const lines = lineOf(fn.body.getEnd()) - first + 1;
      if (lines > MAX_FUNCTION_LINES && !hasFunctionExcuse(file.text, fn.commented))
        out.push({ name: fn.name, line: first, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function functionSizeViolations(file: SourceFile, from: Component): Violation[] {
  if (!PRODUCT.includes(from)) return [];
  return longFunctions(file).map((f) => ({
    file: file.path,
    target: `${f.name} (line ${f.line}): ${f.lines} lines`,
    rule: `function over ${MAX_FUNCTION_LINES} lines`,
  }));
}

/** Every broken rule in a set of .ts/.js files (paths repository-relative). */
export function checkArchitecture(files: readonly SourceFile[]): Violation[] {
  const out: Violation[] = [];
  for (const file of files) {
    const from = componentOf(file.path);
    if (from === null) continue;
    out.push(...importViolations(file, from));
    const size = sizeViolation(file, from);
    if (size) out.push(size);
    out.push(...functionSizeViolations(file, from));
  }
  return out;
}

export function formatViolations(violations: readonly Violation[]): string {
  const byRule = new Map<string, string[]>();
  for (const v of violations)
    byRule.set(v.rule, [...(byRule.get(v.rule) ?? []), `  ${v.file} → ${v.target}`]);
  return [...byRule].map(([rule, lines]) => `${rule}:\n${lines.join('\n')}`).join('\n');
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function readTree(): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'out') walk(full);
      } else if (/\.(ts|js)$/.test(entry.name)) {
        files.push({ path: relative(ROOT, full).split('\\').join('/'), text: readFileSync(full, 'utf8') });
      }
    }
  };
  for (const c of COMPONENTS) walk(join(ROOT, c));
  return files;
}

t.test('import specifiers: every form a module can name another', async (t) => {
  const text = [
    "import type { Redis } from 'ioredis';",
    "import x, { type Y } from './a.js';",
    "export * from '../b.js';",
    "export type { D } from '../d.js';",
    'const s = \'import z from "in-a-string"\';',
    "// import q from 'in-a-comment';",
    "const m = await import('../dyn.js');",
    "type T = import('../type-query.js').T;",
    "import '../side-effect.js';",
  ].join('\n');
  t.same(importSpecifiers(text), [
    'ioredis',
    './a.js',
    '../b.js',
    '../d.js',
    '../dyn.js',
    '../type-query.js',
    '../side-effect.js',
  ]);
});

t.test('the checker catches each kind of violation on a synthetic tree', async (t) => {
  const long = (comment: string) => `${comment}\n${'export const x = 1;\n'.repeat(MAX_LINES)}`;
  const files: SourceFile[] = [
    // Allowed.
    { path: 'gateway/ok.ts', text: "import { a } from './b.js';\nimport { k } from '../shared/keys.js';" },
    { path: 'gateway/store-ok.ts', text: "import { R } from '../store/registry/registry.js';" },
    { path: 'store/ok.ts', text: "import { Redis } from 'ioredis';\nimport { Queue } from 'bullmq';" },
    {
      path: 'bin/ok.ts',
      text: "import { g } from '../gateway/gateway.js';\nimport { Redis } from 'ioredis';",
    },
    { path: 'bench/ok.ts', text: "import { startRedis } from '../testkit/redis.js';" },
    { path: 'shared/ok.ts', text: "import { z } from 'zod';" },
    { path: 'console/big-ok.ts', text: long('/**\n * A thing.\n * Over 300 lines because it must.\n */') },
    { path: 'test/anything.ts', text: "import { Redis } from 'ioredis';\nimport '../gateway/gateway.js';" },
    // Broken.
    { path: 'gateway/sideways.ts', text: "import { reconcile } from '../reconciler/reconciler.js';" },
    { path: 'console/redis-type.ts', text: "import type { Redis } from 'ioredis';" },
    { path: 'console/bull-deep.ts', text: "export type { Job } from 'bullmq/dist/esm/classes/job.js';" },
    { path: 'agent/store.ts', text: "const s = await import('../store/runs/redis-run-store.js');" },
    { path: 'shared/ws.ts', text: "import WebSocket from 'ws';" },
    { path: 'shared/up.ts', text: "export * from '../gateway/uws.js';" },
    { path: 'store/up.ts', text: "import { c } from '../console/api.js';" },
    { path: 'bench/helpers.ts', text: "import { startGateway } from '../test/helpers/gateway.js';" },
    { path: 'reconciler/big.ts', text: long('/** Long. */') },
  ];
  const found = checkArchitecture(files).map((v) => `${v.file} → ${v.target}: ${v.rule}`);
  t.same(found, [
    'gateway/sideways.ts → ../reconciler/reconciler.js: gateway/ must not import reconciler/',
    'console/redis-type.ts → ioredis: only store/ may import ioredis',
    'console/bull-deep.ts → bullmq/dist/esm/classes/job.js: only store/ may import bullmq',
    'agent/store.ts → ../store/runs/redis-run-store.js: agent/ must not import store/',
    'shared/ws.ts → ws: shared/ must not import ws',
    'shared/up.ts → ../gateway/uws.js: shared/ must not import gateway/',
    'store/up.ts → ../console/api.js: store/ must not import console/',
    'bench/helpers.ts → ../test/helpers/gateway.js: bench/ must not import test/',
    `reconciler/big.ts → ${MAX_LINES + 1} lines: product file over ${MAX_LINES} lines`,
  ]);
  t.match(
    formatViolations(checkArchitecture(files)),
    /gateway\/ must not import reconciler\/:\n {2}gateway\/sideways\.ts → /,
  );
});

t.test('the function-size check measures every kind of function and honours a written reason', async (t) => {
  const body = (n: number) => '  x++;\n'.repeat(n);
  // A body of n statement lines spans n + 2 lines with its braces.
  const over = MAX_FUNCTION_LINES - 1;
  const cases: Record<string, string> = {
    declared: `export function declared() {\n${body(over)}}`,
    fits: `function fits() {\n${body(over - 1)}}`,
    arrow: `export const arrow = async () => {\n${body(over)}};`,
    expression: `const expression = function () {\n${body(over)}};`,
    method: `class Wiring {\n  method() {\n${body(over)}  }\n}`,
    ctor: `class Built {\n  constructor() {\n${body(over)}  }\n}`,
    field: `class Handlers {\n  onMessage = (m: string) => {\n${body(over)}  };\n}`,
    literal: `const obj = { literal() {\n${body(over)}} };`,
    // Inline callbacks count toward the function that holds them, not on their own.
    callback: `call(() => {\n${body(over)}});`,
    excused: `/** Over 100 lines because the table reads better whole. */\nfunction excused() {\n${body(over)}}`,
    excusedArrow: `// Over 100 lines because it is one state machine.\nexport const excusedArrow = () => {\n${body(over)}};`,
  };
  const files: SourceFile[] = [
    ...Object.entries(cases).map(([name, text]) => ({ path: `bin/${name}.ts`, text })),
    // Test helpers and benches are not product code.
    { path: 'test/long.test.ts', text: cases.declared as string },
    { path: 'bench/long.ts', text: cases.declared as string },
  ];
  const found = checkArchitecture(files).map((v) => `${v.file} → ${v.target}: ${v.rule}`);
  const rule = `${MAX_FUNCTION_LINES + 1} lines: function over ${MAX_FUNCTION_LINES} lines`;
  t.same(found, [
    `bin/declared.ts → declared (line 1): ${rule}`,
    `bin/arrow.ts → arrow (line 1): ${rule}`,
    `bin/expression.ts → expression (line 1): ${rule}`,
    `bin/method.ts → method (line 2): ${rule}`,
    `bin/ctor.ts → constructor (line 2): ${rule}`,
    `bin/field.ts → onMessage (line 2): ${rule}`,
    `bin/literal.ts → literal (line 1): ${rule}`,
  ]);
  t.same(
    longFunctions({ path: 'shared/ok.ts', text: `export function fits() {\n${body(over - 1)}}` }),
    [],
    'a body of exactly the limit passes',
  );
});

t.test('the repository keeps the import rule and the size rule', async (t) => {
  const files = readTree();
  t.ok(files.length > 100, `scanned ${files.length} files`);
  // Compared as text so a failure's diff lists them one per line, grouped by rule.
  t.equal(formatViolations(checkArchitecture(files)), '', 'no violations (file → import)');
});
