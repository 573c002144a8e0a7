/**
 * The walk back past a bad head: the pure walk and poll plan on literal data, the history both
 * Git source adapters give it (MemoryGitSource, and SimpleGitSource on a real repository with a
 * merge), and what a 100-commit walk costs on real git with the real compiler.
 */
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { parseFirstParentLog } from '../reconciler/git/parse-git-output.js';
import { SimpleGitSource } from '../reconciler/git/simple-git-source.js';
import { type GitFile, gitBlobSha, MemoryGitSource } from '../reconciler/git-source.js';
import { pollPlan } from '../reconciler/handlers/poll.js';
import { badCommitMessage, type WalkDeps, walkBack, walkNote } from '../reconciler/handlers/walk-back.js';
import { type CompileResult, ManifestCompiler } from '../shared/manifest/compile.js';
import { EMPTY_SOURCE_STATUS, type SourceStatus } from '../store/desired-state/state-store.js';
import { git, makeGitRepo, tempDir } from '../testkit/git-repo.js';
import { WEB, WEB_BAD } from './helpers/handler-worlds.js';

const file = (path: string, content: string): GitFile => ({ path, content, blob: gitBlobSha(content) });
const ok: CompileResult = { state: { tasks: [] }, sources: {}, errors: [], warnings: [] };
const broken: CompileResult = { ...ok, errors: [{ file: 'a.fluke.hcl', line: 3, message: 'nope' }] };

/** A linear history `c0 … cN` (cN the head); `good` lists the commits that compile. */
function world(commits: Record<string, string>, good: string[]) {
  const order = Object.keys(commits).reverse();
  const asked: { history: [string, number][]; files: string[]; compiled: string[] } = {
    history: [],
    files: [],
    compiled: [],
  };
  const deps: WalkDeps = {
    history: async (head, max) => {
      asked.history.push([head, max]);
      return order.slice(order.indexOf(head)).slice(0, max);
    },
    filesAt: async (rev) => {
      asked.files.push(rev);
      return [file('a.fluke.hcl', commits[rev] ?? '')];
    },
    compile: async (files) => {
      const rev = order.find((r) => commits[r] === files[0]?.content) ?? '?';
      asked.compiled.push(rev);
      return good.includes(rev) ? ok : broken;
    },
  };
  const head = order[0] as string;
  return { deps, asked, head, headFiles: [file('a.fluke.hcl', commits[head] ?? '')] };
}

t.test('walkBack: pure decisions', async (t) => {
  const commits = { c0: 'v0', c1: 'v1', c2: 'v2', c3: 'v3', c4: 'v4' };

  t.test('finds the newest commit that compiles, looking no further', async (t) => {
    const w = world(commits, ['c1', 'c2']);
    const out = await walkBack(w.head, w.headFiles, 100, w.deps);
    t.match(out, { kind: 'found', revision: 'c2', back: 2, compiled: 2 });
    t.same(w.asked.history, [['c4', 101]], 'the head plus walk_back commits asked for');
    t.same(w.asked.files, ['c3', 'c2']);
  });

  t.test('bounds: walk_back commits before the head, not one more', async (t) => {
    const w = world(commits, ['c0', 'c1']);
    t.same(await walkBack(w.head, w.headFiles, 2, w.deps), {
      kind: 'none',
      looked: 2,
      whole_history: false,
      compiled: 2,
    });
    t.same(w.asked.files, ['c3', 'c2'], 'c1 compiles but is 3 back');
    const w3 = world(commits, ['c0', 'c1']);
    t.match(await walkBack(w3.head, w3.headFiles, 3, w3.deps), { kind: 'found', revision: 'c1', back: 3 });
  });

  t.test('0 disables the walk: nothing read', async (t) => {
    const w = world(commits, ['c3']);
    t.same(await walkBack(w.head, w.headFiles, 0, w.deps), {
      kind: 'none',
      looked: 0,
      whole_history: false,
      compiled: 0,
    });
    t.same(w.asked, { history: [], files: [], compiled: [] });
  });

  t.test('none compiles: the whole (short) history is looked at', async (t) => {
    const w = world(commits, []);
    const out = await walkBack(w.head, w.headFiles, 100, w.deps);
    t.same(out, { kind: 'none', looked: 4, whole_history: true, compiled: 4 });
    t.match(walkNote(out, 100), /none of the 4 earlier commit\(s\) of the branch compiles either/);
  });

  t.test('commits with manifests already tried are not compiled again', async (t) => {
    const w = world({ c0: 'good', c1: 'bad', c2: 'bad', c3: 'worse', c4: 'bad' }, ['c0']);
    t.match(await walkBack(w.head, w.headFiles, 100, w.deps), { kind: 'found', revision: 'c0', back: 4 });
    t.same(w.asked.compiled, ['c3', 'c0'], 'c2 and c1 have the head’s manifests');
  });

  t.test('a history that does not start at the head is an error, not a wrong answer', async (t) => {
    const w = world(commits, ['c2']);
    await t.rejects(walkBack('c9', [], 10, w.deps), /does not start with it/);
  });

  t.test('messages', async (t) => {
    const head = 'a'.repeat(40);
    t.equal(
      badCommitMessage(head, [{ file: 'web.fluke.hcl', line: 5, message: 'bad' }]),
      '1 error(s) in commit aaaaaaaaaaaa; first: web.fluke.hcl:5: bad',
    );
    const found = { kind: 'found', revision: 'b'.repeat(40), result: ok, compiled: 1 } as const;
    t.equal(
      walkNote({ ...found, back: 1 }, 100),
      'desired state recovered from bbbbbbbbbbbb (its parent), the newest commit that compiles',
    );
    t.match(walkNote({ ...found, back: 7 }, 100), /\(7 commits back on the first-parent history\)/);
    const none = { kind: 'none', compiled: 0 } as const;
    t.match(walkNote({ ...none, looked: 0, whole_history: false }, 0), /server\.git\.walk_back = 0/);
    t.match(
      walkNote({ ...none, looked: 100, whole_history: false }, 100),
      /none of the 100 commits before it compiles either \(server\.git\.walk_back = 100\)/,
    );
    t.match(walkNote({ ...none, looked: 0, whole_history: true }, 100), /first commit of the branch/);
  });
});

t.test('pollPlan', async (t) => {
  const status = (s: Partial<SourceStatus>): SourceStatus => ({ ...EMPTY_SOURCE_STATUS, ...s });
  const error = (revision: string | null) => ({ revision, message: 'm', diagnostics: [], at: 'x' });
  const current = { revision: 'g', state: { tasks: [] } };
  t.equal(pollPlan(status({ revision: 'g' }), current, 'g'), 'unchanged');
  t.equal(pollPlan(status({}), null, 'h'), 'compile', 'nothing stored (FLUSHALL, first start)');
  t.equal(pollPlan(status({ revision: 'g', last_error: error('h') }), current, 'h'), 'known_bad');
  t.equal(
    pollPlan(status({ revision: null, last_error: error('h') }), null, 'h'),
    'known_bad',
    'a walk that found nothing is not repeated for the same head',
  );
  t.equal(
    pollPlan(status({ revision: 'g', last_error: error('h') }), null, 'h'),
    'compile',
    'the status names a state that is gone',
  );
  t.equal(pollPlan(status({ revision: 'g', last_error: error(null) }), current, 'h'), 'compile');
  t.equal(pollPlan(status({ revision: 'g', last_error: error('h') }), current, 'i'), 'compile');
});

t.test('parseFirstParentLog', async (t) => {
  const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(40)) as [string, string, string];
  t.same(parseFirstParentLog(`\x01${a}\0\x01${b}\0\ndir/with space\nnewline.hcl\0README\0\x01${c}\0\nx\0`), [
    { revision: a, paths: [] },
    { revision: b, paths: ['dir/with space\nnewline.hcl', 'README'] },
    { revision: c, paths: ['x'] },
  ]);
  t.same(parseFirstParentLog(''), []);
  t.throws(() => parseFirstParentLog(`\x01${a}\0\nok\0\x01evil\0`), /unexpected git log output/);
});

t.test('MemoryGitSource: first parents, bounded, through a merge', async (t) => {
  const g = new MemoryGitSource();
  const a = g.commit({ 'a.fluke.hcl': 'a' });
  const side = g.commitOn([a], { 'a.fluke.hcl': 'side' });
  const b = g.commit({ 'a.fluke.hcl': 'b' });
  const m = g.merge(side, { 'a.fluke.hcl': 'm', 'README.md': 'x' });
  t.same(await g.firstParents(m, 10), [m, b, a]);
  t.same(await g.firstParents(m, 2), [m, b]);
  const old = await g.snapshotAt(side);
  t.same(old, { revision: side, files: [file('a.fluke.hcl', 'side')] });
  t.same(
    (await g.snapshotAt(m)).files.map((f) => f.path),
    ['a.fluke.hcl'],
    'the manifest glob applies',
  );
  await t.rejects(g.snapshotAt('0'.repeat(40)), { code: 'git_failed' });
});

t.test('SimpleGitSource: first parents and old commits read from the object store', async (t) => {
  const repo = await makeGitRepo();
  t.teardown(repo.remove);
  const cache = await tempDir('fluke-cache-');
  t.teardown(cache.remove);
  const a = await repo.commit({ 'web.fluke.hcl': WEB, 'README.md': 'a' });
  const side = await repo.commit({ 'web.fluke.hcl': `${WEB}\n# side\n` }, { branch: 'side' });
  const b = await repo.commit({ 'web.fluke.hcl': WEB_BAD, 'README.md': 'b' }, { branch: 'main' });
  await git(repo.dir, ['merge', '--no-ff', '--no-edit', '-X', 'theirs', 'side']);
  const merge = await git(repo.dir, ['rev-parse', 'HEAD']);
  const src = new SimpleGitSource({
    url: repo.dir,
    branch: 'main',
    cacheDir: join(cache.dir, 'cache'),
    manifestGlob: '**/*.fluke.hcl',
    logger: pino({ level: 'silent' }),
  });
  t.equal((await src.fetch()).revision, merge);
  t.same(
    await src.firstParents(merge, 100),
    [merge, b, a],
    'the side commit is not on the first-parent path',
  );
  t.same(await src.firstParents(merge, 2), [merge, b]);
  t.equal(
    await git(join(cache.dir, 'cache'), ['rev-parse', '--is-shallow-repository']),
    'false',
    'the cache holds the full history',
  );
  const old = await src.snapshotAt(a);
  t.same(old, { revision: a, files: [{ path: 'web.fluke.hcl', content: WEB, blob: gitBlobSha(WEB) }] });
  t.equal((await src.snapshotAt(side)).files[0]?.content, `${WEB}\n# side\n`);
  await t.rejects(src.snapshotAt('--upload-pack=x'), { code: 'git_failed' }, 'never given to git');

  // Commits that change no manifest are read from memory: the same files as their child.
  const c1 = await repo.commit({ 'web.fluke.hcl': WEB });
  const c2 = await repo.commit({ 'README.md': 'only docs' });
  const c3 = await repo.commit({ 'README.md': 'more docs' });
  t.equal((await src.fetch()).revision, c3);
  t.same(await src.firstParents(c3, 3), [c3, c2, c1]);
  const atC2 = await src.snapshotAt(c2);
  t.equal(atC2.files, (await src.fetch()).files, 'c2 is the head’s manifests, not read again');
  const atC1 = await src.snapshotAt(c1);
  t.equal(atC1.files, atC2.files, 'c2 changed only README.md: c1 has its manifests');
  t.equal(atC1.revision, c1);
  await t.rejects(src.firstParents('-n1', 2), { code: 'git_failed' });
});

t.test('cost: walking 100 bad commits that share their files', async (t) => {
  const repo = await makeGitRepo();
  t.teardown(repo.remove);
  const cache = await tempDir('fluke-cache-');
  t.teardown(cache.remove);
  const shared: Record<string, string> = {};
  for (let i = 0; i < 20; i++) shared[`hosts/h${i}.fluke.hcl`] = WEB.replaceAll('web_config', `web_${i}`);
  const good = await repo.commit(shared);
  await repo.commit({ 'web.fluke.hcl': WEB_BAD });
  for (let i = 0; i < 99; i++) await repo.commit({ 'README.md': `r${i}`, 'notes.fluke.hcl': `# ${i}\n` });
  const src = new SimpleGitSource({
    url: repo.dir,
    branch: 'main',
    cacheDir: join(cache.dir, 'cache'),
    manifestGlob: '**/*.fluke.hcl',
    logger: pino({ level: 'silent' }),
  });
  const compiler = new ManifestCompiler();
  const head = await src.fetch();
  t.not((await compiler.compile(head.files)).errors.length, 0);
  const parsedBefore = compiler.parseCount;
  const spent = { read: 0, compile: 0 };
  const timed =
    <A extends unknown[], R>(key: keyof typeof spent, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const start = performance.now();
      try {
        return await fn(...a);
      } finally {
        spent[key] += performance.now() - start;
      }
    };
  const started = performance.now();
  const out = await walkBack(head.revision, head.files, 100, {
    history: timed('read', (rev: string, max: number) => src.firstParents(rev, max)),
    filesAt: timed('read', async (rev: string) => (await src.snapshotAt(rev)).files),
    compile: timed('compile', (files: GitFile[]) => compiler.compile(files)),
  });
  const ms = performance.now() - started;
  t.match(out, { kind: 'found', revision: good, back: 100, compiled: 100 });
  // 98 commits each bring one new notes file; the bad web file and the 20 shared ones stay cached.
  t.equal(compiler.parseCount - parsedBefore, 98, 'only the changed file of each commit is parsed');
  t.comment(
    `walk over 100 commits of 21-22 manifests: ${ms.toFixed(0)} ms (git reads ${spent.read.toFixed(0)} ms, compiles ${spent.compile.toFixed(0)} ms)`,
  );
});

t.test('cost: walking 100 commits that change no manifest', async (t) => {
  const repo = await makeGitRepo();
  t.teardown(repo.remove);
  const cache = await tempDir('fluke-cache-');
  t.teardown(cache.remove);
  const good = await repo.commit({ 'web.fluke.hcl': WEB });
  await repo.commit({ 'web.fluke.hcl': WEB_BAD });
  for (let i = 0; i < 99; i++) await repo.commit({ 'README.md': `r${i}` });
  const src = new SimpleGitSource({
    url: repo.dir,
    branch: 'main',
    cacheDir: join(cache.dir, 'cache'),
    manifestGlob: '**/*.fluke.hcl',
    logger: pino({ level: 'silent' }),
  });
  const compiler = new ManifestCompiler();
  const head = await src.fetch();
  const started = performance.now();
  const out = await walkBack(head.revision, head.files, 100, {
    history: (rev, max) => src.firstParents(rev, max),
    filesAt: async (rev) => (await src.snapshotAt(rev)).files,
    compile: (files) => compiler.compile(files),
  });
  const ms = performance.now() - started;
  t.match(out, { kind: 'found', revision: good, back: 100, compiled: 1 });
  t.comment(`walk over 100 commits, 99 of them README-only: ${ms.toFixed(0)} ms`);
});
