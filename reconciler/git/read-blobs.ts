/**
 * Reads many blobs with one `git cat-file --batch` process. simple-git cannot stream stdin to a
 * command, and one process per file (`git show sha:path`) costs a fork each: hundreds of manifests
 * would mean hundreds of processes per poll.
 */
import { spawn } from 'node:child_process';
import { coerceError } from '../../shared/errors.js';
import { parseCatFileBatch } from './parse-git-output.js';

export interface ReadBlobsOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export function readBlobs(shas: readonly string[], options: ReadBlobsOptions): Promise<Map<string, Buffer>> {
  if (shas.length === 0) return Promise.resolve(new Map());
  return new Promise((resolve, reject) => {
    // Fixed arguments only: the object names go through stdin, where git cannot read them as options.
    const child = spawn('git', ['cat-file', '--batch'], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let settled = false;
    const finish = (err: Error | null, value?: Map<string, Buffer>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value ?? new Map());
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`git cat-file did not finish within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // EPIPE when git exits early (e.g. a broken repository): the exit code tells the real story.
    child.stdin.on('error', () => {});
    child.on('error', (err) => finish(err));
    child.on('close', (code) => {
      if (code !== 0) {
        const message = Buffer.concat(stderr).toString('utf8').trim();
        finish(new Error(`git cat-file exited with ${code}: ${message}`));
        return;
      }
      try {
        finish(null, parseCatFileBatch(Buffer.concat(stdout)));
      } catch (err) {
        finish(coerceError(err));
      }
    });
    child.stdin.end(`${shas.join('\n')}\n`);
  });
}
