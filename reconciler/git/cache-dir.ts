/**
 * The Git source's cache directory: created as a bare repository with a marker file, and wiped
 * only when the marker says it is ours, so a misconfigured path can never delete someone's data.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SimpleGit } from 'simple-git';
import { GitSourceError } from '../git-source.js';

/** Marks a directory as ours: the only kind the source will ever delete. */
export const CACHE_MARKER = 'fluke-git-cache';

/** Creates the bare repository on first use; refuses a non-empty directory without the marker. */
export async function ensureCacheRepository(cacheDir: string, git: SimpleGit, logger: Logger): Promise<void> {
  const entries = await readdir(cacheDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new GitSourceError('invalid_config', `cache dir ${cacheDir} cannot be read: ${err.message}`);
  });
  if (entries === null || entries.length === 0) {
    await mkdir(cacheDir, { recursive: true });
    // Marker first: a crash between the two leaves a directory we still recognise as ours.
    await writeFile(join(cacheDir, CACHE_MARKER), 'Git cache of the Fluke reconciler; safe to delete.\n');
    await git.raw(['init', '--bare', '--quiet']);
    logger.info({ cacheDir }, 'git cache created');
    return;
  }
  if (!entries.includes(CACHE_MARKER)) {
    throw new GitSourceError(
      'invalid_config',
      `cache dir ${cacheDir} is not empty and was not created by Fluke; refusing to use or delete it`,
    );
  }
  const bare = (await git.raw(['rev-parse', '--is-bare-repository'])).trim();
  if (bare !== 'true') throw new Error(`cache dir ${cacheDir} is not a bare repository`);
}

export async function wipeCacheDir(cacheDir: string): Promise<void> {
  const entries = await readdir(cacheDir).catch(() => [] as string[]);
  if (entries.length > 0 && !entries.includes(CACHE_MARKER)) {
    throw new GitSourceError(
      'invalid_config',
      `cache dir ${cacheDir} lost its Fluke marker; not deleting it`,
    );
  }
  await rm(cacheDir, { recursive: true, force: true });
}
