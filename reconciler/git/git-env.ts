/**
 * The environment every git process of the source runs with. Secrets travel here, never in argv:
 * any local user can read a process's arguments in `ps`, only its owner can read its environment.
 */

/**
 * Ambient GIT_* variables (a hook's GIT_DIR, a user's GIT_SSH) must not redirect our commands, and
 * simple-git refuses to run with editor/pager/askpass variables it cannot vouch for; git needs none
 * of them to fetch and read.
 */
const AMBIENT_BLOCKED = new Set(['EDITOR', 'VISUAL', 'PAGER', 'PREFIX', 'SSH_ASKPASS']);

export interface GitEnvOptions {
  gitDir: string;
  /** Only for commands that talk to the remote. */
  sshKeyFile?: string | null;
  basicAuth?: { user: string; password: string } | null;
}

/** For a shell (`GIT_SSH_COMMAND` is run by `sh`): single quotes, with `'` closed, escaped, reopened. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function gitEnv(ambient: NodeJS.ProcessEnv, options: GitEnvOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(ambient)) {
    const upper = key.toUpperCase();
    if (value !== undefined && !upper.startsWith('GIT_') && !AMBIENT_BLOCKED.has(upper)) env[key] = value;
  }
  // English messages, because fetch errors are classified by their text; never wait for a prompt.
  Object.assign(env, { LC_ALL: 'C', LANGUAGE: 'C', GIT_TERMINAL_PROMPT: '0', GIT_DIR: options.gitDir });
  if (options.sshKeyFile) {
    // accept-new: the first connection pins the host key (no manual known_hosts step), later changes fail.
    env.GIT_SSH_COMMAND = `ssh -i ${shellQuote(options.sshKeyFile)} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes`;
  }
  if (options.basicAuth) {
    const { user, password } = options.basicAuth;
    // GIT_CONFIG_COUNT is `-c http.extraHeader=…` without the argv exposure. Not in the URL either:
    // git echoes URLs in its messages, which end up in logs and /api/v1/status.
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  }
  return env;
}
