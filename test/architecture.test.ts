/**
 * The import rule and the file-size rule, checked over the real source tree. `checkArchitecture` is
 * pure (a list of files in, a list of violations out) so the first tests can prove on a synthetic
 * tree that it catches what it must; the last test runs it on the repository.
 *
 * The rule: gateway/, reconciler/ and console/ import only shared/ and the store layer (store/);
 * agent/ only shared/; shared/ nothing but itself; store/ shared/ and itself; only store/ touches
 * ioredis or bullmq (type-only imports included); bin/ wires everything, and testkit/, test/ and
 * bench/ may reach anywhere — except that bench/ and testkit/ never import test/ (benches share
 * testkit/ with the tests instead).
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

/** Every broken rule in a set of .ts/.js files (paths repository-relative). */
export function checkArchitecture(files: readonly SourceFile[]): Violation[] {
  const out: Violation[] = [];
  for (const file of files) {
    const from = componentOf(file.path);
    if (from === null) continue;
    out.push(...importViolations(file, from));
    const size = sizeViolation(file, from);
    if (size) out.push(size);
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

t.test('the repository keeps the import rule and the size rule', async (t) => {
  const files = readTree();
  t.ok(files.length > 100, `scanned ${files.length} files`);
  // Compared as text so a failure's diff lists them one per line, grouped by rule.
  t.equal(formatViolations(checkArchitecture(files)), '', 'no violations (file → import)');
});
