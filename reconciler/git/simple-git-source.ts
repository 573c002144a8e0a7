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
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
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
import { withCacheLock } from './cache-lock.js';
import { gitEnv } from './git-env.js';
import { classifyFetchError, isRegularFile, parseLsTree } from './parse-git-output.js';
import { readBlobs } from './read-blobs.js';
import { normalizeRepoUrl, type RepoUrlKind, redactUrl, validateBranchName } from './validate-git-inputs.js';

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

/** Marks a directory as ours: the only kind this source will ever delete. */
const MARKER = 'fluke-git-cache';

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
      await this.wipe();
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
    await this.ensureRepository(git);
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
    const entries = parseLsTree(await git.raw(['ls-tree', '-r', '-l', '-z', '--full-tree', revision])).filter(
      (e) => isRegularFile(e) && this.matches(e.path),
    );
    let total = 0;
    for (const e of entries) {
      const size = e.size ?? 0;
      if (size > this.maxFileBytes) {
        throw new GitSourceError(
          'file_too_large',
          `${e.path} at ${revision.slice(0, 12)} is ${size} bytes; manifests are limited to ${this.maxFileBytes}`,
        );
      }
      total += size;
    }
    if (total > this.maxTotalBytes) {
      throw new GitSourceError(
        'file_too_large',
        `manifests at ${revision.slice(0, 12)} total ${total} bytes; the limit is ${this.maxTotalBytes}`,
      );
    }
    const blobs = await readBlobs([...new Set(entries.map((e) => e.sha))], {
      env: this.env(false),
      cwd: dirname(this.cacheDir),
      timeoutMs: this.timeoutMs,
      ...(signal ? { signal } : {}),
    });
    return entries
      .map((e) => {
        const bytes = blobs.get(e.sha);
        if (!bytes) throw new Error(`blob ${e.sha} for ${e.path} was not returned by cat-file`);
        return { path: e.path, content: bytes.toString('utf8'), blob: e.sha };
      })
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  private async ensureRepository(git: SimpleGit): Promise<void> {
    const entries = await readdir(this.cacheDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw new GitSourceError('invalid_config', `cache dir ${this.cacheDir} cannot be read: ${err.message}`);
    });
    if (entries === null || entries.length === 0) {
      await mkdir(this.cacheDir, { recursive: true });
      // Marker first: a crash between the two leaves a directory we still recognise as ours.
      await writeFile(join(this.cacheDir, MARKER), 'Git cache of the Fluke reconciler; safe to delete.\n');
      await git.raw(['init', '--bare', '--quiet']);
      this.logger.info({ cacheDir: this.cacheDir }, 'git cache created');
      return;
    }
    if (!entries.includes(MARKER)) {
      throw new GitSourceError(
        'invalid_config',
        `cache dir ${this.cacheDir} is not empty and was not created by Fluke; refusing to use or delete it`,
      );
    }
    const bare = (await git.raw(['rev-parse', '--is-bare-repository'])).trim();
    if (bare !== 'true') throw new Error(`cache dir ${this.cacheDir} is not a bare repository`);
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

  private async wipe(): Promise<void> {
    const entries = await readdir(this.cacheDir).catch(() => [] as string[]);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new GitSourceError(
        'invalid_config',
        `cache dir ${this.cacheDir} lost its Fluke marker; not deleting it`,
      );
    }
    await rm(this.cacheDir, { recursive: true, force: true });
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
