/**
 * The `git { url, branch }` block of a mise step: before every check the working directory is
 * cloned (if absent or empty) or fetched and hard-reset to `origin/<branch>`, so the host runs
 * exactly what the branch holds. User strings are validated and placed after `--` wherever git
 * could read them as options. What it prints never carries the URL's credentials.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { simpleGit } from 'simple-git';
import { coerceError } from '../../shared/errors.js';
import { redactSecrets } from '../../shared/redact.js';
import type { MiseGit } from '../../shared/types.js';
import { validateBranch, validateGitUrl } from './validate.js';

export interface GitSyncOptions {
  signal: AbortSignal;
  timeoutMs: number;
}

/** Returns a one-line summary of what was done; throws with a readable message on failure. */
export async function syncGitCheckout(dir: string, spec: MiseGit, opts: GitSyncOptions): Promise<string> {
  const invalid = validateGitUrl(spec.url) ?? validateBranch(spec.branch);
  if (invalid) throw new Error(invalid);
  const remoteRef = `refs/remotes/origin/${spec.branch}`;
  try {
    if (await isEmptyOrMissing(dir)) {
      await mkdir(dirname(dir), { recursive: true });
      await git(dirname(dir), opts).raw([
        'clone',
        '--branch',
        spec.branch,
        '--single-branch',
        '--',
        spec.url,
        dir,
      ]);
      return `git: cloned ${redactSecrets(spec.url)} (${spec.branch}) into ${dir}`;
    }
    if (!(await exists(`${dir}/.git`)))
      throw new Error(`working_dir ${dir} exists and is not a git checkout`);
    const g = git(dir, opts);
    const current = (await g.raw(['config', '--get', 'remote.origin.url']).catch(() => '')).trim();
    if (current !== spec.url) {
      // The manifest moved the repository: follow it rather than keep pulling the old one.
      if (current === '') await g.raw(['remote', 'add', '--', 'origin', spec.url]);
      else await g.raw(['remote', 'set-url', '--', 'origin', spec.url]);
    }
    await g.raw(['fetch', '--prune', '--', 'origin', `+refs/heads/${spec.branch}:${remoteRef}`]);
    await g.raw(['reset', '--hard', remoteRef, '--']);
    const head = (await g.raw(['rev-parse', '--short', 'HEAD'])).trim();
    return `git: ${dir} at origin/${spec.branch} (${head})`;
  } catch (err) {
    // git's own messages may quote the URL: its credentials never reach the output.
    throw new Error(`git sync of ${dir} failed: ${redactSecrets(coerceError(err).message.trim())}`);
  }
}

/** Non-GIT_ variables simple-git treats as command injection vectors. */
const GUARDED = new Set(['editor', 'visual', 'pager', 'prefix', 'ssh_askpass']);

function git(baseDir: string, opts: GitSyncOptions) {
  // simple-git refuses a task given GIT_* or editor/pager-style variables explicitly (and strips
  // inherited ones anyway); hand it the agent's environment without them, plus the one we need:
  // no credential prompt may ever block an agent that has no terminal.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.toLowerCase().startsWith('git') && !GUARDED.has(k.toLowerCase())) env[k] = v;
  }
  env['GIT_TERMINAL_PROMPT'] = '0';
  return simpleGit({
    baseDir,
    abort: opts.signal,
    timeout: { block: opts.timeoutMs },
    allowEnvironment: ['GIT_TERMINAL_PROMPT'],
  }).env(env);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}
