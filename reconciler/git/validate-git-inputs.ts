/**
 * Checks on the operator-supplied repository URL and branch before any git process sees them.
 * The URL is passed after `--` and the ref is built by us, but a value that git could read as an
 * option, or a remote-helper transport such as `ext::` (which runs a command), is refused here
 * so no later call site has to remember it.
 */
import { isAbsolute, resolve } from 'node:path';
import { redactSecrets } from '../../shared/redact.js';
import { GitSourceError } from '../git-source.js';

export interface ValidationFailure {
  ok: false;
  reason: string;
}

/** Git's `check-ref-format --branch` rules, applied to the short branch name. */
export function validateBranchName(branch: string): { ok: true } | ValidationFailure {
  const fail = (reason: string): ValidationFailure => ({
    ok: false,
    reason: `invalid branch ${JSON.stringify(branch)}: ${reason}`,
  });
  if (branch.length === 0) return fail('empty');
  if (branch.length > 255) return fail('longer than 255 characters');
  if (branch.startsWith('-')) return fail('starts with "-"');
  if (branch === '@' || branch === 'HEAD') return fail('reserved name');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what git forbids
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(branch))
    return fail('contains a space, control character or one of ~^:?*[\\');
  if (branch.includes('..')) return fail('contains ".."');
  if (branch.includes('@{')) return fail('contains "@{"');
  if (branch.endsWith('.')) return fail('ends with "."');
  for (const part of branch.split('/')) {
    if (part.length === 0) return fail('has an empty path component');
    if (part.startsWith('.')) return fail('has a component starting with "."');
    if (part.endsWith('.lock')) return fail('has a component ending with ".lock"');
  }
  return { ok: true };
}

/** `<transport>::<address>` asks git for a remote helper; `ext::` runs an arbitrary command. */
const REMOTE_HELPER = /^[A-Za-z][A-Za-z0-9+.-]*::/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const ALLOWED_SCHEMES = new Set(['https', 'http', 'ssh', 'git', 'file', 'git+ssh', 'ssh+git']);
/** Git's scp-like syntax `[user@]host:path`: a colon before any slash. */
const SCP_LIKE = /^(?:[^@/]+@)?[^/:]+:/;

export type RepoUrlKind = 'local' | 'file' | 'http' | 'ssh' | 'git';

/**
 * Returns the URL git should be given: local paths are made absolute (the git processes run with
 * a different working directory), everything else is passed through unchanged.
 */
export function normalizeRepoUrl(
  url: string,
  cwd: string = process.cwd(),
): { ok: true; url: string; kind: RepoUrlKind } | ValidationFailure {
  const fail = (reason: string): ValidationFailure => ({ ok: false, reason: `invalid git url: ${reason}` });
  if (url.trim().length === 0) return fail('empty');
  if (url.startsWith('-')) return fail('starts with "-"');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a newline or NUL in a URL is never legitimate
  if (/[\x00-\x1f\x7f]/.test(url)) return fail('contains a control character');
  if (REMOTE_HELPER.test(url)) return fail('remote-helper transports ("<transport>::") are not allowed');
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (!ALLOWED_SCHEMES.has(scheme)) return fail(`scheme "${scheme}" is not supported`);
    const kind: RepoUrlKind =
      scheme === 'file' ? 'file' : scheme.startsWith('http') ? 'http' : scheme === 'git' ? 'git' : 'ssh';
    return { ok: true, url, kind };
  }
  if (!isAbsolute(url) && !url.startsWith('.') && SCP_LIKE.test(url)) return { ok: true, url, kind: 'ssh' };
  return { ok: true, url: resolve(cwd, url), kind: 'local' };
}

/** For logs and error messages: never show credentials embedded in the URL (shared/redact.ts). */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}

/** A commit sha, before it is given to git: never anything git could read as an option. */
export function checkedRevision(revision: string): string {
  if (!/^[0-9a-f]{40,64}$/.test(revision)) {
    throw new GitSourceError('git_failed', `not a commit sha: ${JSON.stringify(revision.slice(0, 80))}`);
  }
  return revision;
}
