/**
 * The real Git source: a bare repository in `cacheDir`, fetched with simple-git.
 *
 * Why `init --bare` + `fetch <url> <one refspec>` rather than `clone --mirror`: a mirror copies
 * every ref (GitHub's refs/pull/* alone can be huge), while we need one branch and no working
 * tree. One code path serves the first call and every later one, an interrupted first fetch
 * leaves a valid repository that the next call completes, and the URL is given on each fetch so
 * a config change needs no remote rewriting. Files are read from the fetched commit's tree, so no
 * checkout can ever be observed half-written.
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { GitPluginError, type SimpleGit, simpleGit } from 'simple-git';
import type { ServerConfig } from '../../shared/config/types.js';
import { coerceError } from '../../shared/errors.js';
import { redactSecrets } from '../../shared/redact.js';
import {
  type GitFile,
  type GitSnapshot,
  type GitSource,
  GitSourceError,
  manifestMatcher,
} from '../git-source.js';
import { ensureCacheRepository, wipeCacheDir } from './cache-dir.js';
import { withCacheLock } from './cache-lock.js';
import { gitEnv } from './git-env.js';
import { classifyFetchError, parseFirstParentLog } from './parse-git-output.js';
import { readBlobs } from './read-blobs.js';
import { readManifests } from './read-manifests.js';
import {
  checkedRevision,
  normalizeRepoUrl,
  type RepoUrlKind,
  redactUrl,
  validateBranchName,
} from './validate-git-inputs.js';

export interface SimpleGitSourceOptions {
  url: string;
  branch: string;
  /** Owned by this source: created, and wiped if it breaks. Give each process its own. */
  cacheDir: string;
  manifestGlob: string;
  sshKeyFile?: string | null;
  basicAuth?: { user: string; password: string } | null;
  logger: Logger;
  /** A git process silent for this long is killed (a black-holed remote must not hang a poll). */
  timeoutMs?: number;
  /** Cap per manifest file; a bigger one fails the fetch with `file_too_large`. */
  maxFileBytes?: number;
  /** Cap on all matched files together. */
  maxTotalBytes?: number;
}

export class SimpleGitSource implements GitSource {
  private readonly url: string;
  private readonly urlKind: RepoUrlKind;
  private readonly branch: string;
  private readonly cacheDir: string;
  private readonly matches: (path: string) => boolean;
  private readonly sshKeyFile: string | null;
  private readonly basicAuth: { user: string; password: string } | null;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly maxFileBytes: number;
  private readonly maxTotalBytes: number;
  /** The tracked ref inside the cache, built by us from a validated branch name. */
  private readonly ref: string;
  private last: GitSnapshot | null = null;
  /** The last commit read: its blobs are not read again for the next one. */
  private lastRead: GitSnapshot = { revision: '', files: [] };
  /** From the last `firstParents`: commit → its child, where the two have the same manifests. */
  private sameAsChild = new Map<string, string>();

  /** Throws `GitSourceError('invalid_config')` for a bad url, branch or glob. */
  constructor(options: SimpleGitSourceOptions) {
    const url = normalizeRepoUrl(options.url);
    if (!url.ok) throw new GitSourceError('invalid_config', url.reason);
    const branch = validateBranchName(options.branch);
    if (!branch.ok) throw new GitSourceError('invalid_config', branch.reason);
    this.url = url.url;
    this.urlKind = url.kind;
    this.branch = options.branch;
    this.ref = `refs/remotes/origin/${options.branch}`;
    this.cacheDir = resolve(options.cacheDir);
    this.matches = manifestMatcher(options.manifestGlob);
    this.sshKeyFile = options.sshKeyFile ? resolve(options.sshKeyFile) : null;
    this.basicAuth = options.basicAuth ?? null;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.maxFileBytes = options.maxFileBytes ?? 1024 * 1024;
    this.maxTotalBytes = options.maxTotalBytes ?? 32 * 1024 * 1024;
    this.logger = options.logger.child({
      component: 'git-source',
      url: redactUrl(this.url),
      branch: this.branch,
    });
    if (this.basicAuth && url.kind !== 'http') {
      this.logger.warn('basic auth is set but the url is not http(s); it will not be used');
    } else if (this.basicAuth && this.url.startsWith('http://')) {
      this.logger.warn('basic auth over plain http sends the password in clear text');
    }
  }

  /** The `server.git` block of server.hcl → a source; `cacheDir` comes from the process wiring. */
  static fromConfig(
    git: ServerConfig['git'],
    options: { cacheDir: string; logger: Logger },
  ): SimpleGitSource {
    const basicAuth =
      git.basic_auth_user !== null
        ? { user: git.basic_auth_user, password: git.basic_auth_password ?? '' }
        : null;
    return new SimpleGitSource({
      url: git.url,
      branch: git.branch,
      manifestGlob: git.manifest_glob,
      sshKeyFile: git.ssh_key_file,
      basicAuth,
      cacheDir: options.cacheDir,
      logger: options.logger,
    });
  }

  fetch(signal?: AbortSignal): Promise<GitSnapshot> {
    return withCacheLock(this.cacheDir, () => this.fetchLocked(signal));
  }

  /**
   * One `git log --first-parent --name-only` (the cache is a full fetch, never shallow). It also
   * notes which commits have the manifests of their child, so the walk reads those from memory.
   */
  async firstParents(revision: string, max: number, signal?: AbortSignal): Promise<string[]> {
    const rev = checkedRevision(revision);
    if (!Number.isInteger(max) || max < 1) return [];
    const log = await withCacheLock(this.cacheDir, async () =>
      parseFirstParentLog(
        await this.git(signal, false).raw([
          ...['log', '--first-parent', '--diff-merges=first-parent', '--no-renames', '--name-only', '-z'],
          ...['--no-color', '--no-show-signature', '--format=%x01%H', `--max-count=${max}`, rev, '--'],
        ]),
      ),
    );
    this.sameAsChild = new Map();
    for (const [i, entry] of log.entries()) {
      const parent = log[i + 1];
      if (parent && !entry.paths.some((p) => this.matches(p)))
        this.sameAsChild.set(parent.revision, entry.revision);
    }
    return log.map((e) => e.revision);
  }

  async snapshotAt(revision: string, signal?: AbortSignal): Promise<GitSnapshot> {
    const rev = checkedRevision(revision);
    if (this.last?.revision === rev) return this.last;
    const child = this.sameAsChild.get(rev);
    if (child !== undefined && this.lastRead.revision === child) {
      this.lastRead = { revision: rev, files: this.lastRead.files };
      return this.lastRead;
    }
    return withCacheLock(this.cacheDir, async () => ({
      revision: rev,
      files: await this.readManifests(this.git(signal, false), rev, signal),
    }));
  }

  private async fetchLocked(signal: AbortSignal | undefined): Promise<GitSnapshot> {
    signal?.throwIfAborted();
    if (this.sshKeyFile) {
      await access(this.sshKeyFile, constants.R_OK).catch(() => {
        throw new GitSourceError('invalid_config', `ssh_key_file ${this.sshKeyFile} cannot be read`);
      });
    }
    try {
      return await this.attempt(signal);
    } catch (err) {
      // Our own classified errors are the remote's or the config's fault: a re-clone cures nothing.
      if (err instanceof GitSourceError || signal?.aborted) throw err;
      const first = coerceError(err).message;
      this.logger.warn({ err: first }, 'git cache looks broken; wiping it and cloning again');
      this.last = null;
      this.lastRead = { revision: '', files: [] };
      await wipeCacheDir(this.cacheDir);
      try {
        return await this.attempt(signal);
      } catch (again) {
        if (again instanceof GitSourceError || signal?.aborted) throw again;
        const message = coerceError(again).message;
        throw new GitSourceError('git_failed', `git failed even after re-cloning the cache: ${message}`, {
          cause: again,
        });
      }
    }
  }

  private async attempt(signal: AbortSignal | undefined): Promise<GitSnapshot> {
    // simple-git refuses a base directory that does not exist.
    await mkdir(dirname(this.cacheDir), { recursive: true });
    const git = this.git(signal, false);
    await ensureCacheRepository(this.cacheDir, git, this.logger);
    const started = Date.now();
    await this.fetchBranch(signal);
    const revision = (await git.raw(['rev-parse', '--verify', '--quiet', `${this.ref}^{commit}`])).trim();
    if (!/^[0-9a-f]{40,64}$/.test(revision)) throw new Error(`cannot resolve ${this.ref} after fetching`);
    if (this.last?.revision === revision) {
      this.logger.debug({ revision, ms: Date.now() - started }, 'git fetch: no new commit');
      return this.last;
    }
    const files = await this.readManifests(git, revision, signal);
    this.last = { revision, files };
    this.logger.info({ revision, files: files.length, ms: Date.now() - started }, 'git fetch: new revision');
    return this.last;
  }

  private async readManifests(git: SimpleGit, revision: string, signal?: AbortSignal): Promise<GitFile[]> {
    const files = await readManifests({
      git,
      revision,
      matches: this.matches,
      maxFileBytes: this.maxFileBytes,
      maxTotalBytes: this.maxTotalBytes,
      readBlobs: (shas) =>
        readBlobs(shas, {
          env: this.env(false),
          cwd: dirname(this.cacheDir),
          timeoutMs: this.timeoutMs,
          ...(signal ? { signal } : {}),
        }),
      known: this.lastRead.files,
    });
    this.lastRead = { revision, files };
    return files;
  }

  private async fetchBranch(signal: AbortSignal | undefined): Promise<void> {
    const refspec = `+refs/heads/${this.branch}:${this.ref}`;
    try {
      // `--` ends the options: the URL can never be read as one.
      await this.git(signal, true).raw([
        'fetch',
        '--quiet',
        '--no-tags',
        '--no-write-fetch-head',
        '--',
        this.url,
        refspec,
      ]);
    } catch (err) {
      if (signal?.aborted) throw err;
      const where = `${redactUrl(this.url)} (branch ${this.branch})`;
      if (err instanceof GitPluginError && err.plugin === 'timeout') {
        throw new GitSourceError('unreachable', `git fetch from ${where} stalled for ${this.timeoutMs} ms`, {
          cause: err,
        });
      }
      const stderr = redactSecrets(coerceError(err).message.replaceAll(this.url, redactUrl(this.url))).trim();
      const kind = classifyFetchError(stderr);
      if (kind === null) throw new Error(`git fetch from ${where} failed: ${stderr}`);
      const summary: Record<typeof kind, string> = {
        branch_not_found: `branch ${this.branch} does not exist in ${redactUrl(this.url)}`,
        auth_failed: `authentication to ${redactUrl(this.url)} failed`,
        unreachable: `cannot reach repository ${redactUrl(this.url)}`,
        busy: `git cache ${this.cacheDir} is locked by another git process`,
      };
      throw new GitSourceError(kind, `${summary[kind]}: ${stderr}`, { cause: err });
    }
  }

  private env(network: boolean): Record<string, string> {
    return gitEnv(process.env, {
      gitDir: this.cacheDir,
      sshKeyFile: network ? this.sshKeyFile : null,
      basicAuth: network && this.urlKind === 'http' ? this.basicAuth : null,
    });
  }

  private git(signal: AbortSignal | undefined, network: boolean): SimpleGit {
    const env = this.env(network);
    return simpleGit({
      baseDir: dirname(this.cacheDir),
      timeout: { block: this.timeoutMs },
      // We set these ourselves (built by gitEnv, not taken from users); simple-git's guard
      // rejects GIT_* variables unless they are listed.
      allowEnvironment: Object.keys(env).filter((k) => k.startsWith('GIT_')),
      unsafe: {
        allowUnsafeSshCommand: 'GIT_SSH_COMMAND' in env,
        allowUnsafeConfigEnvCount: 'GIT_CONFIG_COUNT' in env,
      },
      ...(signal ? { abort: signal } : {}),
    }).env(env);
  }
}
