import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createMiseExecutor } from '../agent/executors/mise.js';
import { createShellExecutor } from '../agent/executors/shell.js';
import { createSystemdExecutor } from '../agent/executors/systemd.js';
import { createHarness, mise, task, tempDir } from './helpers/agent-harness.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const miseBin = join(root, 'node_modules', '@jdxcode', 'mise-linux-x64', 'bin', 'mise');

const TOML = `
[tasks.check]
run = "test -f done.txt"
[tasks.apply]
run = "echo applying; touch done.txt"
`;

function setup(t: Parameters<typeof tempDir>[0]) {
  const base = tempDir(t, 'fluke-mise-');
  const iso = (name: string) => {
    const d = join(base, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  // mise must not read or write anything of the host's: its own home, data, state, cache, config.
  const env = {
    ...process.env,
    HOME: iso('home'),
    MISE_DATA_DIR: iso('data'),
    MISE_STATE_DIR: iso('state'),
    MISE_CACHE_DIR: iso('cache'),
    MISE_CONFIG_DIR: iso('config'),
    MISE_TRUSTED_CONFIG_PATHS: '/',
  };
  const h = createHarness({
    executors: {
      shell: createShellExecutor({ defaultShell: '/bin/bash' }),
      systemd: createSystemdExecutor(),
      mise: createMiseExecutor({ miseBin, baseEnv: env }),
    },
  });
  return { h, base, stateDir: env.MISE_STATE_DIR };
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  });
}

t.test('check task, apply task, re-check with the real mise', async (t) => {
  const { h, base } = setup(t);
  const proj = join(base, 'proj');
  mkdirSync(proj);
  writeFileSync(join(proj, '.mise.toml'), TOML);
  const run = task('rt', [mise('tools', proj)]);
  const result = await h.runTask(run);
  t.equal(result.outcome, 'applied');
  t.ok(existsSync(join(proj, 'done.txt')));
  t.match(result.steps[0]?.output_tail, /applying/);
  t.ok(
    h.outputs.some(
      (o) => o.execution_id === run.execution_id && o.phase === 'apply' && o.line === 'applying',
    ),
  );
  const again = await h.runTask(task('rt', [mise('tools', proj)]));
  t.equal(again.outcome, 'satisfied');
});

t.test('a missing task is an error naming it', async (t) => {
  const { h, base } = setup(t);
  const proj = join(base, 'proj');
  mkdirSync(proj);
  writeFileSync(join(proj, '.mise.toml'), TOML);
  const noCheck = await h.runTask(task('a', [mise('tools', proj, { check_task: 'check-node-22' })]));
  t.match(noCheck.steps[0], {
    outcome: 'failed',
    error: /mise check_task "check-node-22" is not defined in .*proj \(available tasks: apply, check\)/,
  });
  const noApply = await h.runTask(task('b', [mise('tools', proj, { apply_task: 'install' })]));
  t.match(noApply.steps[0], { outcome: 'failed', error: /apply_task "install" is not defined/ });
  t.notOk(existsSync(join(proj, 'done.txt')));
});

t.test('trust is limited to working_dir and never recorded', async (t) => {
  const { h, base, stateDir } = setup(t);
  // An untrusted config above working_dir would make paranoid mise refuse; it must not be read at all.
  const outer = join(base, 'outer');
  const proj = join(outer, 'proj');
  mkdirSync(proj, { recursive: true });
  writeFileSync(join(outer, '.mise.toml'), '[env]\nFROM_PARENT = "yes"\n');
  writeFileSync(
    join(proj, '.mise.toml'),
    '[env]\nFROM_PROJ = "yes"\n[tasks.check]\nrun = "test \\"$FROM_PROJ\\" = yes && test -z \\"$FROM_PARENT\\""\n[tasks.apply]\nrun = "true"\n',
  );
  const result = await h.runTask(task('t', [mise('tools', proj)], 'check'));
  t.equal(
    result.outcome,
    'satisfied',
    'the working_dir config (with env) is trusted, the parent is not read',
  );
  const trusted = join(stateDir, 'trusted-configs');
  t.same(existsSync(trusted) ? readdirSync(trusted) : [], [], 'no trust recorded on the host');
});

t.test('git: clone when absent, fetch and hard reset before every check', async (t) => {
  const { h, base } = setup(t);
  const src = join(base, 'src');
  mkdirSync(src);
  git(src, 'init', '-q', '-b', 'main');
  writeFileSync(
    join(src, '.mise.toml'),
    '[tasks.check]\nrun = "grep -q v1 version.txt"\n[tasks.apply]\nrun = "true"\n',
  );
  writeFileSync(join(src, 'version.txt'), 'v1\n');
  git(src, 'add', '.');
  git(src, 'commit', '-q', '-m', 'v1');

  const checkout = join(base, 'deploy', 'app');
  const step = mise('app', checkout, { git: { url: src, branch: 'main' } });
  const first = await h.runTask(task('app', [step], 'check'));
  t.equal(first.outcome, 'satisfied', first.steps[0]?.error ?? '');
  t.match(first.steps[0]?.output_tail, /git: cloned/);
  t.equal(readFileSync(join(checkout, 'version.txt'), 'utf8'), 'v1\n');

  // New commit upstream, and a local edit that must not survive.
  writeFileSync(join(src, 'version.txt'), 'v2\n');
  git(src, 'commit', '-q', '-am', 'v2');
  writeFileSync(join(checkout, '.mise.toml'), '[tasks.check]\nrun = "true"\n');
  const second = await h.runTask(task('app', [step], 'check'));
  t.equal(second.outcome, 'drifted', 'the pulled check (grep v1) now fails');
  t.match(second.steps[0]?.output_tail, /git: .* at origin\/main/);
  t.equal(readFileSync(join(checkout, 'version.txt'), 'utf8'), 'v2\n');
  t.match(readFileSync(join(checkout, '.mise.toml'), 'utf8'), /grep -q v1/, 'local edits reset');
});

t.test('git: bad branch names and urls are refused before git runs', async (t) => {
  const { h, base } = setup(t);
  const checkout = join(base, 'x');
  const badBranch = await h.runTask(
    task('a', [mise('a', checkout, { git: { url: base, branch: '--upload-pack=touch /tmp/pwned' } })]),
  );
  t.match(badBranch.steps[0], { outcome: 'failed', error: /invalid git branch name/ });
  const badUrl = await h.runTask(
    task('b', [mise('b', checkout, { git: { url: '-oProxyCommand=x', branch: 'main' } })]),
  );
  t.match(badUrl.steps[0], { outcome: 'failed', error: /invalid git url/ });
  t.notOk(existsSync(checkout));
  const missingRepo = await h.runTask(
    task('c', [mise('c', checkout, { git: { url: join(base, 'nope'), branch: 'main' } })]),
  );
  t.match(missingRepo.steps[0], { outcome: 'failed', error: /git sync of .* failed/ });
});
