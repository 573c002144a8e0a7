/**
 * Validation of the strings that end up as command arguments. Everything reaches a command as its
 * own argv entry (never through a shell string), and nothing user-supplied may start with `-`
 * where a program could read it as an option.
 */
import { redactSecrets } from '../../shared/redact.js';

/** POSIX-ish user names as useradd accepts them (a trailing `$` is for Samba machine accounts). */
const USER_NAME = /^[a-z_][a-z0-9_-]*[$]?$/;

export function validateUserName(user: string): string | null {
  if (user.length === 0 || user.length > 32 || !USER_NAME.test(user))
    return `invalid run_as user name "${user}"`;
  return null;
}

const UNIT_NAME =
  /^[A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|mount|automount|path|slice|scope|swap|device)$/;

export function validateUnitName(unit: string): string | null {
  if (unit.length > 256 || unit.startsWith('-') || !UNIT_NAME.test(unit)) {
    return `invalid systemd unit name "${unit}" (expected a name with a suffix, e.g. app.service)`;
  }
  return null;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function validateEnvNames(env: Record<string, string>): string | null {
  for (const key of Object.keys(env))
    if (!ENV_NAME.test(key)) return `invalid environment variable name "${key}"`;
  return null;
}

/** A subset of git-check-ref-format: enough to keep a branch from being read as an option or a range. */
export function validateBranch(branch: string): string | null {
  const bad =
    branch.length === 0 ||
    branch.length > 255 ||
    branch.startsWith('-') ||
    branch.startsWith('/') ||
    branch.endsWith('/') ||
    branch.endsWith('.') ||
    branch.endsWith('.lock') ||
    branch.includes('..') ||
    branch.includes('//') ||
    branch.includes('@{') ||
    !/^[A-Za-z0-9._/+-]+$/.test(branch);
  return bad ? `invalid git branch name "${branch}"` : null;
}

export function validateGitUrl(url: string): string | null {
  if (url.length === 0 || url.startsWith('-') || /[\0\r\n]/.test(url))
    return `invalid git url "${redactSecrets(url)}"`;
  // `ext::` runs an arbitrary command; git disables it by default, and so do we whatever the host config.
  if (/^ext::/i.test(url)) return 'git url with the ext:: transport is not allowed';
  return null;
}

/** mise task names: letters, digits and `_ - : . /`, not starting with `-`. */
export function validateMiseTask(task: string): string | null {
  if (task.length === 0 || task.length > 200 || !/^[A-Za-z0-9_][A-Za-z0-9_:./-]*$/.test(task)) {
    return `invalid mise task name "${task}"`;
  }
  return null;
}
