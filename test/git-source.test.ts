import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import t, { type Test } from 'tap';
import { gitEnv, shellQuote } from '../reconciler/git/git-env.js';
import { classifyFetchError, parseCatFileBatch, parseLsTree } from '../reconciler/git/parse-git-output.js';
import { SimpleGitSource, type SimpleGitSourceOptions } from '../reconciler/git/simple-git-source.js';
import { normalizeRepoUrl, redactUrl, validateBranchName } from '../reconciler/git/validate-git-inputs.js';
import { GitSourceError, gitBlobSha, MemoryGitSource } from '../reconciler/git-source.js';
import { git, makeGitRepo, type TestRepo, tempDir } from '../testkit/git-repo.js';
import { startHttpReceiver } from './helpers/http-receiver.js';

const logLines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

const cleanups: (() => Promise<void>)[] = [];
t.teardown(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function repo(branch?: string): Promise<TestRepo> {
  const r = await makeGitRepo(branch ? { branch } : {});
  cleanups.push(r.remove);
  return r;
}

async function cacheDir(): Promise<string> {
  const d = await tempDir('fluke-cache-');
  cleanups.push(d.remove);
  return join(d.dir, 'cache');
}

async function source(r: TestRepo, extra: Partial<SimpleGitSourceOptions> = {}): Promise<SimpleGitSource> {
  return new SimpleGitSource({
    url: r.dir,
    branch: 'main',
    cacheDir: await cacheDir(),
    manifestGlob: '**/*.fluke.hcl',
    logger,
    ...extra,
  });
}

async function rejectsWith(
  t: Test,
  p: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<GitSourceError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof GitSourceError, `rejects with a GitSourceError (${String(err)})`);
  const e = err as GitSourceError;
  t.equal(e.code, code, `code ${code}: ${e.message}`);
  if (pattern) t.match(e.message, pattern);
  return e;
}

const WEB = 'task "web" {}\n';
const DB = 'task "db" { description = "ünïcode ✓" }\n';

t.test('first fetch returns the matching files at the tip, read from the commit', async (t) => {
  const r = await repo();
  const sha = await r.commit({
    'web.fluke.hcl': WEB,
    'hosts/db/db.fluke.hcl': DB,
    'README.md': '# not a manifest\n',
    'hosts/notes.hcl': 'x = 1\n',
    '.github/ci.fluke.hcl': 'hidden\n',
  });
  await symlink('web.fluke.hcl', join(r.dir, 'link.fluke.hcl'));
  await git(r.dir, ['add', '--all']);
  await git(r.dir, ['commit', '--quiet', '-m', 'symlink']);
  const tip = await git(r.dir, ['rev-parse', 'HEAD']);
  t.not(tip, sha);
  // A dirty working tree in the source repo must not leak into what we read.
  await writeFile(join(r.dir, 'web.fluke.hcl'), 'half-written');

  const src = await source(r);
  const snap = await src.fetch();
  t.equal(snap.revision, tip);
  t.same(
    snap.files.map((f) => f.path),
    ['hosts/db/db.fluke.hcl', 'web.fluke.hcl'],
    'root-level and nested matches, sorted; README, other globs, dot-dirs and symlinks skipped',
  );
  t.equal(snap.files[1]?.content, WEB);
  t.equal(snap.files[0]?.content, DB, 'UTF-8 content survives byte-exact parsing');
  t.equal(snap.files[1]?.blob, await r.blobOf('web.fluke.hcl'));
  t.equal(snap.files[1]?.blob, gitBlobSha(WEB), 'gitBlobSha agrees with git');
  t.same(await src.fetch(), snap, 'a second fetch without a new commit gives the same snapshot');
});

t.test('a new commit is seen on the next fetch; deleted files disappear', async (t) => {
  const r = await repo();
  await r.commit({ 'a.fluke.hcl': 'a1', 'b.fluke.hcl': 'b1' });
  const src = await source(r);
  await src.fetch();
  const second = await r.commit({ 'a.fluke.hcl': 'a2', 'b.fluke.hcl': null, 'c/c.fluke.hcl': 'c' });
  const snap = await src.fetch();
  t.equal(snap.revision, second);
  t.same(
    snap.files.map((f) => [f.path, f.content]),
    [
      ['a.fluke.hcl', 'a2'],
      ['c/c.fluke.hcl', 'c'],
    ],
  );
});

t.test('a custom glob and a file:// URL', async (t) => {
  const r = await repo();
  await r.commit({ 'manifests/x.hcl': 'x', 'manifests/deep/y.hcl': 'y', 'z.hcl': 'z' });
  const src = await source(r, { url: pathToFileURL(r.dir).href, manifestGlob: 'manifests/*.hcl' });
  t.same(
    (await src.fetch()).files.map((f) => f.path),
    ['manifests/x.hcl'],
  );
});

t.test('tracks a branch other than main', async (t) => {
  const r = await repo();
  await r.commit({ 'main.fluke.hcl': 'main' });
  const prod = await r.commit({ 'prod.fluke.hcl': 'prod' }, { branch: 'release/prod-1' });
  const snap = await (await source(r, { branch: 'release/prod-1' })).fetch();
  t.equal(snap.revision, prod);
  t.same(
    snap.files.map((f) => f.path),
    ['main.fluke.hcl', 'prod.fluke.hcl'],
  );
});

t.test('a missing branch and an unreachable repository are clear errors', async (t) => {
  const r = await repo();
  await r.commit({ 'a.fluke.hcl': 'a' });
  await rejectsWith(
    t,
    (await source(r, { branch: 'nope' })).fetch(),
    'branch_not_found',
    /branch nope does not exist/,
  );
  const gone = join(r.dir, 'does-not-exist');
  const e = await rejectsWith(
    t,
    (await source(r, { url: gone })).fetch(),
    'unreachable',
    /cannot reach repository/,
  );
  t.ok(e.transient, 'unreachable is transient');
});

t.test('option-like and dangerous inputs are refused before git runs', async (t) => {
  const r = await repo();
  await r.commit({ 'a.fluke.hcl': 'a' });
  const dir = await cacheDir();
  const base = { url: r.dir, branch: 'main', cacheDir: dir, manifestGlob: '**/*.fluke.hcl', logger };
  for (const branch of [
    '--upload-pack=evil',
    '-b',
    'a..b',
    'a b',
    'x.lock',
    '.hidden',
    'a//b',
    'a@{1}',
    '',
  ]) {
    t.throws(
      () => new SimpleGitSource({ ...base, branch }),
      { code: 'invalid_config' },
      `branch ${JSON.stringify(branch)}`,
    );
  }
  for (const url of [
    '--upload-pack=touch /tmp/pwned',
    'ext::sh -c touch% /tmp/pwned',
    'fd::3',
    'ftp://x/y',
    'a\nb',
  ]) {
    t.throws(
      () => new SimpleGitSource({ ...base, url }),
      { code: 'invalid_config' },
      `url ${JSON.stringify(url)}`,
    );
  }
  t.throws(() => new SimpleGitSource({ ...base, manifestGlob: ' ' }), { code: 'invalid_config' });
  await t.rejects(readdir(dir), { code: 'ENOENT' }, 'no cache dir was created: git never ran');
});

t.test('a deleted cache dir is cloned again', async (t) => {
  const r = await repo();
  await r.commit({ 'a.fluke.hcl': 'a' });
  const dir = await cacheDir();
  const src = await source(r, { cacheDir: dir });
  await src.fetch();
  await rm(dir, { recursive: true, force: true });
  const next = await r.commit({ 'a.fluke.hcl': 'a2' });
  const snap = await src.fetch();
  t.equal(snap.revision, next);
  t.equal(snap.files[0]?.content, 'a2');
});

t.test('a corrupted cache is wiped and cloned again, once', async (t) => {
  const r = await repo();
  const first = await r.commit({ 'a.fluke.hcl': 'a' });
  const dir = await cacheDir();
  const src = await source(r, { cacheDir: dir });
  await src.fetch();

  await writeFile(join(dir, 'HEAD'), 'garbage\n');
  t.equal(
    (await new SimpleGitSource({ ...srcOptions(r, dir) }).fetch()).revision,
    first,
    'broken HEAD → re-cloned',
  );

  // Refs survive but the objects are gone: fetch thinks it is up to date, reading then fails.
  await rm(join(dir, 'objects'), { recursive: true, force: true });
  await mkdir(join(dir, 'objects'));
  const fresh = new SimpleGitSource({ ...srcOptions(r, dir) });
  const snap = await fresh.fetch();
  t.equal(snap.revision, first, 'missing objects → re-cloned');
  t.equal(snap.files[0]?.content, 'a');
  t.ok(
    logLines.some((l) => l.includes('wiping it and cloning again')),
    'the wipe is logged',
  );
});

function srcOptions(r: TestRepo, dir: string): SimpleGitSourceOptions {
  return { url: r.dir, branch: 'main', cacheDir: dir, manifestGlob: '**/*.fluke.hcl', logger };
}

t.test('a non-empty directory that is not ours is neither used nor deleted', async (t) => {
  const r = await repo();
  await r.commit({ 'a.fluke.hcl': 'a' });
  const dir = await cacheDir();
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'precious.txt'), 'keep me');
  await rejectsWith(
    t,
    new SimpleGitSource(srcOptions(r, dir)).fetch(),
    'invalid_config',
    /not created by Fluke/,
  );
  t.equal(await readFile(join(dir, 'precious.txt'), 'utf8'), 'keep me');
});

t.test('concurrent fetches on one cache dir are serialized', async (t) => {
  const r = await repo();
  const sha = await r.commit({ 'a.fluke.hcl': 'a', 'b.fluke.hcl': 'b' });
  const dir = await cacheDir();
  const a = new SimpleGitSource(srcOptions(r, dir));
  const b = new SimpleGitSource(srcOptions(r, dir));
  const results = await Promise.all([a.fetch(), b.fetch(), a.fetch(), b.fetch(), a.fetch()]);
  t.same(new Set(results.map((s) => s.revision)), new Set([sha]));
  t.ok(results.every((s) => s.files.length === 2));
});

t.test('size caps on manifest files', async (t) => {
  const r = await repo();
  await r.commit({ 'big.fluke.hcl': 'x'.repeat(2000), 'small.fluke.hcl': 'y' });
  await rejectsWith(
    t,
    (await source(r, { maxFileBytes: 1000 })).fetch(),
    'file_too_large',
    /big\.fluke\.hcl/,
  );
  await rejectsWith(
    t,
    (await source(r, { maxTotalBytes: 1500 })).fetch(),
    'file_too_large',
    /total 2001 bytes/,
  );
});

t.test('an aborted signal stops the fetch', async (t) => {
  const r = await repo();
  await r.commit({ 'a.fluke.hcl': 'a' });
  const ac = new AbortController();
  ac.abort(new Error('shutting down'));
  await t.rejects((await source(r)).fetch(ac.signal), /shutting down/);
});

t.test('basic auth goes in a header, never in argv, errors or logs', async (t) => {
  const receiver = await startHttpReceiver();
  t.teardown(() => receiver.close());
  receiver.failNext(10, 401, { 'www-authenticate': 'Basic realm="git"' });
  const password = 's3cret-pa55';
  const before = logLines.length;
  const src = await source(await repo(), {
    url: `http://127.0.0.1:${receiver.port}/org/repo.git`,
    basicAuth: { user: 'fluke', password },
  });
  const e = await rejectsWith(t, src.fetch(), 'auth_failed');
  const first = receiver.requests[0];
  t.match(first?.path, /^\/org\/repo\.git\/info\/refs\?service=git-upload-pack/);
  t.equal(first?.headers.authorization, `Basic ${Buffer.from(`fluke:${password}`).toString('base64')}`);
  t.notMatch(e.message, password);
  t.notOk(
    logLines.slice(before).some((l) => l.includes(password) || l.includes('czNjcmV0')),
    'not in logs',
  );
});

t.test('an ssh key file that cannot be read is a config error', async (t) => {
  const r = await repo();
  await rejectsWith(
    t,
    (
      await source(r, { url: 'ssh://git@127.0.0.1:1/repo.git', sshKeyFile: join(r.dir, 'missing key') })
    ).fetch(),
    'invalid_config',
    /ssh_key_file/,
  );
});

t.test('an ssh key reaches ssh through GIT_SSH_COMMAND, path quoted for the shell', async (t) => {
  const r = await repo();
  const bin = await tempDir('fluke-fake-ssh-');
  cleanups.push(bin.remove);
  // A stand-in `ssh` first on PATH records its arguments, one per line, and fails like a refused connection.
  const argsFile = join(bin.dir, 'args');
  await writeFile(
    join(bin.dir, 'ssh'),
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${argsFile}'\necho 'ssh: connect to host example port 22: Connection refused' >&2\nexit 255\n`,
    { mode: 0o755 },
  );
  const key = join(r.dir, "it's a key; $(touch pwned)");
  await writeFile(key, 'not really a key\n', { mode: 0o600 });
  const path = process.env.PATH;
  process.env.PATH = `${bin.dir}:${path}`;
  t.teardown(() => {
    process.env.PATH = path;
  });
  await rejectsWith(
    t,
    (await source(r, { url: 'git@example.invalid:org/repo.git', sshKeyFile: key })).fetch(),
    'unreachable',
    /Connection refused/,
  );
  const args = (await readFile(argsFile, 'utf8')).split('\n');
  t.equal(args[args.indexOf('-i') + 1], key, 'the key path arrives as one argument, unexpanded');
  t.ok(args.includes('IdentitiesOnly=yes'));
  t.ok(args.includes('StrictHostKeyChecking=accept-new'));
  t.ok(args.includes('BatchMode=yes'));
  t.ok(args.includes('git@example.invalid'));
  await t.rejects(readFile(join(r.dir, 'pwned')), { code: 'ENOENT' }, 'no command substitution ran');
});

t.test('200 manifest files', async (t) => {
  const r = await repo();
  const files: Record<string, string> = {};
  for (let i = 0; i < 200; i++)
    files[`hosts/h${i % 10}/task-${i}.fluke.hcl`] = `task "t${i}" {\n${'  # pad\n'.repeat(40)}}\n`;
  const sha = await r.commit(files);
  const src = await source(r);
  let start = performance.now();
  const snap = await src.fetch();
  const cold = performance.now() - start;
  t.equal(snap.revision, sha);
  t.equal(snap.files.length, 200);
  await r.commit({ 'hosts/h0/task-0.fluke.hcl': 'changed' });
  start = performance.now();
  const warm = await src.fetch();
  t.equal(warm.files.find((f) => f.path === 'hosts/h0/task-0.fluke.hcl')?.content, 'changed');
  t.comment(
    `200 files: first fetch ${cold.toFixed(0)} ms, incremental fetch ${(performance.now() - start).toFixed(0)} ms`,
  );
});

t.test('MemoryGitSource', async (t) => {
  const mem = new MemoryGitSource();
  await t.rejects(mem.fetch(), { code: 'branch_not_found' });
  const rev = mem.commit({ 'b/x.fluke.hcl': 'x', 'a.fluke.hcl': WEB, 'README.md': 'no' });
  const snap = await mem.fetch();
  t.equal(snap.revision, rev);
  t.same(
    snap.files.map((f) => f.path),
    ['a.fluke.hcl', 'b/x.fluke.hcl'],
  );
  t.equal(snap.files[0]?.blob, gitBlobSha(WEB));
  t.not(mem.commit({ 'a.fluke.hcl': 'other' }), rev);
  mem.failNext();
  await t.rejects(mem.fetch(), { code: 'unreachable' });
  t.equal((await mem.fetch()).files.length, 1);
  t.equal(mem.fetchCount, 4);
});

t.test('pure helpers', async (t) => {
  t.ok(validateBranchName('feature/x-1.2').ok);
  t.ok(validateBranchName('ünïcode').ok);
  t.notOk(validateBranchName('a/').ok);
  t.notOk(validateBranchName('a.').ok);
  t.notOk(validateBranchName('a~1').ok);

  t.match(normalizeRepoUrl('repo', '/srv'), { ok: true, url: '/srv/repo', kind: 'local' });
  t.match(normalizeRepoUrl('git@github.com:org/repo.git'), { ok: true, kind: 'ssh' });
  t.match(normalizeRepoUrl('https://github.com/org/repo.git'), { ok: true, kind: 'http' });
  t.match(normalizeRepoUrl('file:///srv/repo'), { ok: true, kind: 'file' });
  t.equal(
    redactUrl('https://bob:hunter2@example.com/r.git'),
    'https://***@example.com/r.git',
    'over http the whole userinfo goes: the user part may be the token',
  );
  t.equal(redactUrl('ssh://git@example.com/r.git'), 'ssh://git@example.com/r.git');

  const sha = 'a'.repeat(40);
  t.same(
    parseLsTree(
      `100644 blob ${sha}     12\tdir/with space\nand newline.hcl\x00040000 tree ${sha}       -\tdir\0`,
    ),
    [
      { mode: '100644', type: 'blob', sha, size: 12, path: 'dir/with space\nand newline.hcl' },
      { mode: '040000', type: 'tree', sha, size: null, path: 'dir' },
    ],
  );
  const body = Buffer.from('é\n', 'utf8');
  const batch = Buffer.concat([Buffer.from(`${sha} blob ${body.length}\n`), body, Buffer.from('\n')]);
  t.equal(parseCatFileBatch(batch).get(sha)?.toString('utf8'), 'é\n');
  t.throws(() => parseCatFileBatch(Buffer.from(`${sha} missing\n`)), /missing/);
  t.throws(() => parseCatFileBatch(batch.subarray(0, batch.length - 2)), /truncated/);

  t.equal(classifyFetchError("fatal: couldn't find remote ref refs/heads/x"), 'branch_not_found');
  t.equal(
    classifyFetchError("fatal: unable to access 'https://x/': Could not resolve host: x"),
    'unreachable',
  );
  t.equal(classifyFetchError("fatal: Authentication failed for 'https://x/'"), 'auth_failed');
  t.equal(classifyFetchError("error: cannot lock ref 'refs/remotes/origin/main'"), 'busy');
  t.equal(classifyFetchError('fatal: bad object HEAD'), null);

  const ambient = { PATH: '/bin', GIT_DIR: '/elsewhere', git_ssh: 'x', EDITOR: 'vi', HOME: '/h' };
  const local = gitEnv(ambient, { gitDir: '/cache' });
  t.same(local, {
    PATH: '/bin',
    HOME: '/h',
    LC_ALL: 'C',
    LANGUAGE: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_DIR: '/cache',
  });
  const remote = gitEnv(ambient, {
    gitDir: '/cache',
    sshKeyFile: '/k',
    basicAuth: { user: 'u', password: 'p' },
  });
  t.equal(remote.GIT_SSH_COMMAND?.startsWith("ssh -i '/k' -o IdentitiesOnly=yes"), true);
  t.equal(remote.GIT_CONFIG_VALUE_0, `Authorization: Basic ${Buffer.from('u:p').toString('base64')}`);
  t.equal(shellQuote("a'b"), `'a'\\''b'`);
});
