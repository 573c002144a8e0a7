/**
 * `shell` steps: `default_shell -c <script>` in `working_dir` (default: the agent's home), with the
 * step's `env` added to the agent's environment. `run_as` goes through `sudo -n -u <user> --`
 * (non-interactive: a missing sudo rule fails at once instead of waiting for a password).
 */
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { ShellStep } from '../../shared/types.js';
import { runCommand } from '../run-command.js';
import { type ExecContext, type ExecResult, type Executor, errorResult } from './executor.js';
import { validateEnvNames, validateUserName } from './validate.js';

export interface ShellExecutorOptions {
  defaultShell: string;
  /** Where steps without `working_dir` run; the agent's home directory unless overridden. */
  homeDir?: string;
  /** The environment commands inherit (the agent's own, by default). */
  baseEnv?: NodeJS.ProcessEnv;
  sudoPath?: string;
}

export interface CommandLine {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * The exact argv for a script. With run_as, sudo resets the environment (its `env_reset` policy),
 * so the step's env travels as `env -- K=V …` arguments after sudo instead.
 */
export function shellCommandLine(
  step: Pick<ShellStep, 'run_as' | 'env'>,
  script: string,
  opts: ShellExecutorOptions,
): CommandLine | { error: string } {
  const envError = validateEnvNames(step.env);
  if (envError) return { error: envError };
  const baseEnv = opts.baseEnv ?? process.env;
  if (step.run_as === null) {
    return { file: opts.defaultShell, args: ['-c', script], env: { ...baseEnv, ...step.env } };
  }
  const userError = validateUserName(step.run_as);
  if (userError) return { error: userError };
  const assignments = Object.entries(step.env).map(([k, v]) => `${k}=${v}`);
  const args = ['-n', '-u', step.run_as, '--'];
  if (assignments.length > 0) args.push('env', '--', ...assignments);
  args.push(opts.defaultShell, '-c', script);
  return { file: opts.sudoPath ?? 'sudo', args, env: { ...baseEnv } };
}

export function createShellExecutor(opts: ShellExecutorOptions): Executor<ShellStep> {
  const run = async (step: ShellStep, script: string, ctx: ExecContext): Promise<ExecResult> => {
    const cwd = step.working_dir ?? opts.homeDir ?? homedir();
    const dirError = await checkDirectory(cwd);
    if (dirError) return errorResult(dirError);
    const line = shellCommandLine(step, script, opts);
    if ('error' in line) return errorResult(line.error);
    return runCommand(line.file, line.args, {
      cwd,
      env: line.env,
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
      onLine: ctx.onLine,
    });
  };
  return {
    check: (step, ctx) => run(step, step.check, ctx),
    apply: (step, ctx) => run(step, step.command, ctx),
  };
}

/** Spawning in a missing directory fails with a misleading "spawn /bin/bash ENOENT"; say what is wrong. */
export async function checkDirectory(dir: string): Promise<string | null> {
  try {
    const s = await stat(dir);
    return s.isDirectory() ? null : `working_dir ${dir} is not a directory`;
  } catch {
    return `working_dir ${dir} does not exist`;
  }
}
