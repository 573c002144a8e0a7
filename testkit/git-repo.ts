/**
 * A throwaway git repository in a temp dir, driven by the git CLI, for tests of the Git source.
 * Commits are made in a working tree; the source under test fetches from it like from any remote.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** No ambient GIT_* (a hook's GIT_DIR would redirect every command) and a fixed identity. */
function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GIT_')) env[k] = v;
  return {
    ...env,
    GIT_AUTHOR_NAME: 'Fluke Test',
    GIT_AUTHOR_EMAIL: 'test@fluke.invalid',
    GIT_COMMITTER_NAME: 'Fluke Test',
    GIT_COMMITTER_EMAIL: 'test@fluke.invalid',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
  };
}

export async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: gitEnv(), maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

export interface TestRepo {
  dir: string;
  /**
   * Writes the files (a null content deletes the file), commits everything on `branch`
   * (created from the current HEAD if new; default: the current branch), returns the commit sha.
   */
  commit(
    files: Record<string, string | null>,
    options?: { branch?: string; message?: string },
  ): Promise<string>;
  /** The blob sha git gives a path at HEAD. */
  blobOf(path: string): Promise<string>;
}

export async function makeGitRepo(
  options: { branch?: string } = {},
): Promise<TestRepo & { remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fluke-repo-'));
  await git(dir, ['init', '--quiet', '--initial-branch', options.branch ?? 'main']);
  await git(dir, ['config', 'commit.gpgsign', 'false']);
  let current = options.branch ?? 'main';
  return {
    dir,
    async commit(files, commitOptions = {}) {
      const branch = commitOptions.branch ?? current;
      if (branch !== current) {
        const exists = await git(dir, ['branch', '--list', branch]);
        await git(dir, exists ? ['checkout', '--quiet', branch] : ['checkout', '--quiet', '-b', branch]);
        current = branch;
      }
      for (const [path, content] of Object.entries(files)) {
        const full = join(dir, path);
        if (content === null) {
          await rm(full, { force: true });
        } else {
          await mkdir(dirname(full), { recursive: true });
          await writeFile(full, content);
        }
      }
      await git(dir, ['add', '--all']);
      await git(dir, ['commit', '--quiet', '--allow-empty', '-m', commitOptions.message ?? 'test commit']);
      return git(dir, ['rev-parse', 'HEAD']);
    },
    blobOf: (path) => git(dir, ['rev-parse', `HEAD:${path}`]),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A fresh temp dir (for cache dirs) removed by the returned function. */
export async function tempDir(prefix = 'fluke-tmp-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
