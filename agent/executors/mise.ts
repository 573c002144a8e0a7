/**
 * `mise` steps: `mise run <check_task>` / `mise run <apply_task>` in `working_dir`, after an
 * optional git clone-or-pull (./gitSync.ts).
 *
 * Trust: recent mise auto-trusts (and remembers) any config that `mise run` touches. The agent
 * instead runs mise in paranoid mode with `MISE_TRUSTED_CONFIG_PATHS` set to that one directory
 * and `MISE_CEILING_PATHS` at its parent, so only the working_dir's config (plus the host's global
 * config) is read, nothing above it, and no trust is ever recorded on the host.
 */
import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { coerceError } from '../../shared/errors.js';
import type { MiseStep } from '../../shared/types.js';
import { runCommand } from '../run-command.js';
import type { ExecContext, ExecResult, Executor } from './executor.js';
import { errorResult } from './executor.js';
import { syncGitCheckout } from './git-sync.js';
import { checkDirectory } from './shell.js';
import { validateMiseTask } from './validate.js';

export interface MiseExecutorOptions {
  /** The mise binary; `mise` on PATH by default. */
  miseBin?: string;
  baseEnv?: NodeJS.ProcessEnv;
}

/** The environment mise runs with: trust limited to `dir`, discovery stopped at its parent. */
export function miseEnv(base: NodeJS.ProcessEnv, dir: string): NodeJS.ProcessEnv {
  return {
    ...base,
    MISE_PARANOID: '1',
    MISE_TRUSTED_CONFIG_PATHS: dir,
    MISE_CEILING_PATHS: dirname(dir),
  };
}

/** Task names and aliases from `mise tasks ls --json`. */
export function parseTaskList(json: string): string[] {
  const raw: unknown = JSON.parse(json);
  if (!Array.isArray(raw)) throw new Error('mise tasks ls --json did not print a list');
  const names: string[] = [];
  for (const item of raw) {
    if (typeof item !== 'object' || item === null) continue;
    const rec = item as Record<string, unknown>;
    if (typeof rec['name'] === 'string') names.push(rec['name']);
    if (Array.isArray(rec['aliases']))
      for (const a of rec['aliases']) if (typeof a === 'string') names.push(a);
  }
  return names;
}

export function createMiseExecutor(opts: MiseExecutorOptions = {}): Executor<MiseStep> {
  const bin = opts.miseBin ?? 'mise';

  const runTask = async (
    step: MiseStep,
    task: string,
    which: string,
    ctx: ExecContext,
  ): Promise<ExecResult> => {
    const invalid = validateMiseTask(task);
    if (invalid) return errorResult(invalid);
    const dirError = await checkDirectory(step.working_dir);
    if (dirError) return errorResult(dirError);
    // mise compares trusted paths after canonicalising; a symlinked working_dir must match too.
    const dir = await realpath(step.working_dir);
    const env = miseEnv(opts.baseEnv ?? process.env, dir);
    const common = { cwd: dir, env, timeoutMs: ctx.timeoutMs, signal: ctx.signal };

    const list = await runCommand(bin, ['tasks', 'ls', '--json'], { ...common, tailBytes: 1024 * 1024 });
    if (list.timedOut || list.error || list.exitCode !== 0) {
      return {
        ...list,
        output: list.output.slice(-4096),
        error: list.error ?? `mise tasks ls failed in ${dir}`,
      };
    }
    let names: string[];
    try {
      names = parseTaskList(list.output);
    } catch (err) {
      return errorResult(`cannot read mise tasks in ${dir}: ${coerceError(err).message}`);
    }
    if (!names.includes(task)) {
      const available = names.length > 0 ? names.join(', ') : 'none';
      return errorResult(`mise ${which} "${task}" is not defined in ${dir} (available tasks: ${available})`);
    }
    return runCommand(bin, ['run', task], { ...common, onLine: ctx.onLine });
  };

  return {
    async check(step, ctx) {
      let prepared = '';
      if (step.git) {
        try {
          prepared = await syncGitCheckout(step.working_dir, step.git, {
            signal: ctx.signal,
            timeoutMs: ctx.timeoutMs,
          });
          ctx.onLine('stdout', prepared);
        } catch (err) {
          return errorResult(coerceError(err).message);
        }
      }
      const result = await runTask(step, step.check_task, 'check_task', ctx);
      return prepared ? { ...result, output: `${prepared}\n${result.output}` } : result;
    },
    apply: (step, ctx) => runTask(step, step.apply_task, 'apply_task', ctx),
  };
}
