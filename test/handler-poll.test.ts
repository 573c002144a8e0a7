/**
 * The poll handler on in-memory fakes (a real ManifestCompiler on literal manifests), and the
 * alert-webhook check of a compiled state.
 */
import t from 'tap';
import { type GitSnapshot, MemoryGitSource } from '../reconciler/git-source.js';
import { checkAlertWebhook } from '../reconciler/handlers/alert-policy.js';
import { type PollDeps, pollHandler } from '../reconciler/handlers/poll.js';
import { ManifestCompiler, type ManifestFile } from '../shared/manifest/compile.js';
import { MemoryStateStore } from '../store/desired-state/memory-state-store.js';
import type { StateStore } from '../store/desired-state/state-store.js';
import { DB, MOTD, T0, WEB, WEB_BAD, WEB_FIXED } from './helpers/handler-worlds.js';
import { silentLogger } from './helpers/reconciler-fakes.js';

// ---- poll ----------------------------------------------------------------------------------------

function pollWorld(opts: { alertWebhook?: string | null; lockHeld?: boolean; walkBack?: number } = {}) {
  const git = new MemoryGitSource();
  const compiler = new ManifestCompiler();
  const state: StateStore = new MemoryStateStore();
  const fanouts: string[] = [];
  let compiles = 0;
  let pinned: GitSnapshot | null = null;
  let clock = T0;
  const webhook = opts.alertWebhook === undefined ? 'https://hooks.example/fluke' : opts.alertWebhook;
  const deps: PollDeps = {
    fetch: async () => pinned ?? git.fetch(),
    history: (revision, max) => git.firstParents(revision, max),
    filesAt: async (revision) => (await git.snapshotAt(revision)).files,
    walkBack: opts.walkBack ?? 100,
    compile: async (files: ManifestFile[]) => {
      compiles += 1;
      return checkAlertWebhook(await compiler.compile(files), {
        policy: 'remediate',
        alert_webhook: webhook,
      });
    },
    state,
    fanoutAll: async (revision) => {
      fanouts.push(revision);
    },
    singleFlight: async <T>(fn: () => Promise<T>): Promise<T | null> => (opts.lockHeld ? null : fn()),
    logger: silentLogger,
    now: () => {
      clock += 1000;
      return new Date(clock);
    },
  };
  return {
    git,
    get state(): MemoryStateStore {
      return deps.state as MemoryStateStore;
    },
    /** What a FLUSHALL does to the stored state: all of it gone. */
    flush: () => {
      deps.state = new MemoryStateStore();
    },
    fanouts,
    compiles: () => compiles,
    poll: () => pollHandler(deps),
    /** The branch tip is set back to this exact snapshot (a reset / force-push to an old commit). */
    pin: (snapshot: GitSnapshot | null) => {
      pinned = snapshot;
    },
  };
}

t.test('poll', async (t) => {
  t.test('the first good commit: state saved, one fan-out', async (t) => {
    const w = pollWorld();
    const rev = w.git.commit({ 'web.fluke.hcl': WEB, 'README.md': 'not a manifest' });
    t.same(await w.poll(), { kind: 'updated', revision: rev, tasks: 1 });
    t.same(w.fanouts, [rev]);
    const current = await w.state.current();
    t.equal(current?.revision, rev);
    t.same(
      current?.state.tasks.map((task) => task.name),
      ['web_config'],
    );
    const status = await w.state.status();
    t.equal(status.revision, rev);
    t.equal(status.last_seen_revision, rev);
    t.equal(status.last_error, null);
    t.equal(status.task_count, 1);
  });

  t.test('the same revision again: unchanged, not recompiled, no fan-out', async (t) => {
    const w = pollWorld();
    const rev = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    const before = await w.state.status();
    t.same(await w.poll(), { kind: 'unchanged', revision: rev });
    t.same(await w.poll(), { kind: 'unchanged', revision: rev });
    t.equal(w.compiles(), 1);
    t.same(w.fanouts, [rev]);
    const after = await w.state.status();
    t.equal(after.revision_at, before.revision_at, 'the state did not change');
    t.not(after.last_poll_at, before.last_poll_at, 'but the poll is recorded');
  });

  t.test('a bad commit is rejected; the last good state stays, the error says file:line', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.same(w.fanouts, [good], 'no fan-out for a bad commit');
    t.equal((await w.state.current())?.revision, good);
    const status = await w.state.status();
    t.equal(status.revision, good);
    t.equal(status.last_seen_revision, bad);
    t.equal(status.last_error?.revision, bad);
    t.match(status.last_error?.message, /web\.fluke\.hcl:5: task "web_config": unknown attribute "owner"/);
    t.match(status.last_error?.diagnostics, [{ file: 'web.fluke.hcl', line: 5, message: /owner/ }]);
  });

  t.test('the same bad commit again is not recompiled', async (t) => {
    const w = pollWorld();
    w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    await w.poll();
    const error = (await w.state.status()).last_error;
    t.equal(w.compiles(), 2);
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.equal(w.compiles(), 2, 'compiled once, however often it is seen');
    t.same((await w.state.status()).last_error, error, 'the error stays as recorded');
  });

  t.test('a fix after a bad commit: updated, error cleared, fanned out', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    await w.poll();
    const fixed = w.git.commit({ 'web.fluke.hcl': WEB_FIXED });
    t.same(await w.poll(), { kind: 'updated', revision: fixed, tasks: 1 });
    t.same(w.fanouts, [good, fixed]);
    const status = await w.state.status();
    t.equal(status.revision, fixed);
    t.equal(status.last_error, null);
    t.match((await w.state.current())?.state.tasks[0]?.steps[0], { command: /install/ });
  });

  t.test('going back to the good revision after a bad commit clears the error', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    const goodSnapshot = await w.git.fetch();
    await w.poll();
    w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    await w.poll();
    t.not((await w.state.status()).last_error, null);
    w.pin(goodSnapshot);
    t.same(await w.poll(), { kind: 'unchanged', revision: good });
    const status = await w.state.status();
    t.equal(status.last_error, null);
    t.equal(status.last_seen_revision, good);
    t.equal(w.compiles(), 2, 'the good revision is not compiled again');
    t.same(w.fanouts, [good], 'nothing changed for the agents');
  });

  t.test('a failed fetch is recorded and keeps the state; the next good poll clears it', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    w.git.failNext();
    const outcome = await w.poll();
    t.match(outcome, { kind: 'fetch_failed', error: /simulated outage/ });
    const status = await w.state.status();
    t.equal(status.revision, good);
    t.equal((await w.state.current())?.revision, good);
    t.equal(status.last_error?.revision, null);
    t.match(status.last_error?.message, /^git fetch failed: .*simulated outage/);
    t.same(await w.poll(), { kind: 'unchanged', revision: good });
    t.equal((await w.state.status()).last_error, null);
    t.same(w.fanouts, [good]);
  });

  t.test('a poll that finds the lock held does nothing', async (t) => {
    const w = pollWorld({ lockHeld: true });
    w.git.commit({ 'web.fluke.hcl': WEB });
    t.same(await w.poll(), { kind: 'skipped' });
    t.equal(w.git.fetchCount, 0);
    t.equal(w.compiles(), 0);
    t.same(await w.state.status(), {
      revision: null,
      revision_at: null,
      last_poll_at: null,
      last_seen_revision: null,
      last_error: null,
      task_count: 0,
    });
  });

  t.test('an alert_only task without alert_webhook is a bad commit, reported at the task', async (t) => {
    const w = pollWorld({ alertWebhook: null });
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    t.same(await w.poll(), { kind: 'updated', revision: good, tasks: 1 }, 'remediate needs no webhook');
    const bad = w.git.commit({ 'web.fluke.hcl': WEB, 'ops/motd.fluke.hcl': MOTD });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    const status = await w.state.status();
    t.equal(status.revision, good);
    t.match(status.last_error?.diagnostics, [
      {
        file: 'ops/motd.fluke.hcl',
        line: 1,
        message: /task "motd" .*"alert_only".*alert_webhook is not set/,
      },
    ]);
    t.match(status.last_error?.message, /ops\/motd\.fluke\.hcl:1:/);
  });
});

t.test('poll: the state rebuilt from Git alone when none is stored', async (t) => {
  const short = (rev: string) => rev.slice(0, 12);

  t.test(
    'bad head, then FLUSHALL: the parent is recovered, fanned out, the head still reported',
    async (t) => {
      const w = pollWorld();
      const good = w.git.commit({ 'web.fluke.hcl': WEB });
      await w.poll();
      const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
      t.match(await w.poll(), { kind: 'rejected', revision: bad });
      w.flush();
      t.same(await w.poll(), { kind: 'recovered', revision: good, head: bad, tasks: 1 });
      t.same(w.fanouts, [good, good], 'fanned out as for a new good commit');
      t.equal((await w.state.current())?.revision, good);
      const status = await w.state.status();
      t.equal(status.revision, good);
      t.equal(status.last_seen_revision, bad);
      t.equal(status.last_error?.revision, bad);
      t.match(status.last_error?.diagnostics, [{ file: 'web.fluke.hcl', line: 5, message: /owner/ }]);
      t.match(
        status.last_error?.message,
        new RegExp(
          `^1 error\\(s\\) in commit ${short(bad)}; first: web\\.fluke\\.hcl:5: .*; desired state recovered from ${short(good)} \\(its parent\\)`,
        ),
      );

      const compiles = w.compiles();
      const reads = w.git.snapshotCount;
      t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
      t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
      t.equal(w.compiles(), compiles, 'the same bad head is not compiled again');
      t.equal(w.git.snapshotCount, reads, 'nor walked again while a good state is stored');
      t.same(w.fanouts, [good, good]);
      t.equal((await w.state.status()).revision, good);
    },
  );

  t.test('first start on a bad head: commits with the same manifests are not compiled twice', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD, 'README.md': 'v1' });
    const head = w.git.commit({ 'web.fluke.hcl': WEB_BAD, 'README.md': 'v2' });
    t.same(await w.poll(), { kind: 'recovered', revision: good, head, tasks: 1 });
    t.equal(w.compiles(), 2, `the head and ${short(good)}; ${short(bad)} has the head's manifests`);
    t.match(
      (await w.state.status()).last_error?.message,
      /recovered from \w+ \(2 commits back on the first-parent/,
    );
  });

  t.test('a merge is followed along its first parent', async (t) => {
    const w = pollWorld();
    const base = w.git.commit({ 'web.fluke.hcl': WEB });
    const side = w.git.commitOn([base], { 'web.fluke.hcl': WEB_FIXED });
    w.git.commit({ 'web.fluke.hcl': WEB_BAD, 'db.fluke.hcl': DB });
    const merge = w.git.merge(side, { 'web.fluke.hcl': WEB_BAD });
    t.same(await w.poll(), { kind: 'recovered', revision: base, head: merge, tasks: 1 });
    t.not((await w.state.current())?.revision, side, 'the merged side branch is never in force');
  });

  t.test('walk_back bounds the walk: a good commit one past it is not found', async (t) => {
    const build = (w: ReturnType<typeof pollWorld>) => {
      const good = w.git.commit({ 'web.fluke.hcl': WEB });
      w.git.commit({ 'web.fluke.hcl': WEB_BAD });
      w.git.commit({ 'web.fluke.hcl': WEB_BAD, 'db.fluke.hcl': DB });
      return { good, head: w.git.commit({ 'web.fluke.hcl': WEB_BAD, 'motd.fluke.hcl': MOTD }) };
    };
    const near = pollWorld({ walkBack: 2 });
    const { head } = build(near);
    t.same(await near.poll(), { kind: 'rejected', revision: head, errors: 1 });
    const status = await near.state.status();
    t.equal(status.revision, null, 'no desired state');
    t.equal(status.last_error?.revision, head);
    t.match(
      status.last_error?.message,
      /web\.fluke\.hcl:5: .*; no desired state: none of the 2 commits before it compiles either \(server\.git\.walk_back = 2\)$/,
    );
    t.same(near.fanouts, []);
    const compiles = near.compiles();
    t.same(await near.poll(), { kind: 'rejected', revision: head, errors: 1 });
    t.equal(near.compiles(), compiles, 'a walk that found nothing is not repeated for the same head');

    const far = pollWorld({ walkBack: 3 });
    const found = build(far);
    t.same(await far.poll(), { kind: 'recovered', revision: found.good, head: found.head, tasks: 1 });
  });

  t.test('walk_back = 0 never walks back', async (t) => {
    const w = pollWorld({ walkBack: 0 });
    w.git.commit({ 'web.fluke.hcl': WEB });
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    t.same(await w.poll(), { kind: 'rejected', revision: bad, errors: 1 });
    t.equal(w.git.snapshotCount, 0, 'no older commit read');
    const status = await w.state.status();
    t.equal(status.revision, null);
    t.match(status.last_error?.message, /walking back past a bad head is off \(server\.git\.walk_back = 0\)/);
  });

  t.test('no commit of the branch compiles: a clear error, no state', async (t) => {
    const w = pollWorld();
    w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    const head = w.git.commit({ 'web.fluke.hcl': WEB_BAD, 'db.fluke.hcl': DB });
    t.same(await w.poll(), { kind: 'rejected', revision: head, errors: 1 });
    t.match(
      (await w.state.status()).last_error?.message,
      /no desired state: none of the 1 earlier commit\(s\) of the branch compiles either/,
    );
    t.equal(await w.state.current(), null);
    const lone = pollWorld();
    const only = lone.git.commit({ 'web.fluke.hcl': WEB_BAD });
    t.same(await lone.poll(), { kind: 'rejected', revision: only, errors: 1 });
    t.match((await lone.state.status()).last_error?.message, /the head is the first commit of the branch/);
  });

  t.test('the status names a revision whose state is gone: rebuilt, walking back if need be', async (t) => {
    const w = pollWorld();
    const good = w.git.commit({ 'web.fluke.hcl': WEB });
    await w.poll();
    w.state.states.clear();
    t.same(await w.poll(), { kind: 'updated', revision: good, tasks: 1 }, 'a good head is compiled again');
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    t.match(await w.poll(), { kind: 'rejected', revision: bad });
    w.state.states.clear();
    t.same(await w.poll(), { kind: 'recovered', revision: good, head: bad, tasks: 1 });
    t.same(w.fanouts, [good, good, good]);
  });

  t.test('a walk that fails is recorded without a revision and tried again', async (t) => {
    const w = pollWorld();
    w.git.commit({ 'web.fluke.hcl': WEB });
    const bad = w.git.commit({ 'web.fluke.hcl': WEB_BAD });
    const unknown = { revision: 'f'.repeat(40), files: (await w.git.fetch()).files };
    w.pin(unknown);
    t.same(await w.poll(), { kind: 'rejected', revision: unknown.revision, errors: 1 });
    const status = await w.state.status();
    t.equal(status.last_error?.revision, null);
    t.match(status.last_error?.message, /walking back past it failed: memory git source: no commit f{40}/);
    w.pin(null);
    t.match(await w.poll(), { kind: 'recovered', head: bad });
  });
});

t.test('checkAlertWebhook', async (t) => {
  const compiler = new ManifestCompiler();
  const both = await compiler.compile([
    { path: 'web.fluke.hcl', content: WEB },
    { path: 'db.fluke.hcl', content: DB },
  ]);
  t.same(both.errors, []);
  t.equal(checkAlertWebhook(both, { policy: 'remediate', alert_webhook: 'https://h.example' }), both);
  const without = checkAlertWebhook(both, { policy: 'remediate', alert_webhook: null });
  t.match(without.errors, [{ file: 'db.fluke.hcl', line: 1, message: /"db_backup".*"remediate_and_alert"/ }]);
  t.equal(without.errors.length, 1, 'the task on the remediate default needs no webhook');
  const alertingDefault = checkAlertWebhook(both, { policy: 'alert_only', alert_webhook: null });
  t.same(
    alertingDefault.errors.map((e) => `${e.file}:${e.line}`),
    ['db.fluke.hcl:1', 'web.fluke.hcl:1'],
    'a server default that alerts makes every task on it need the webhook',
  );
  const broken = await compiler.compile([{ path: 'web.fluke.hcl', content: WEB_BAD }]);
  t.equal(
    checkAlertWebhook(broken, { policy: 'alert_only', alert_webhook: null }),
    broken,
    'compile errors first',
  );
});
