/**
 * `systemd` steps. Check: `systemctl is-active` (active ⇔ exit 0) and `systemctl is-enabled`
 * (enabled ⇔ exit 0) compared with the wanted state. Apply: only the commands needed, among
 * `enable|disable` then `start|stop`. The unit is validated and always passed after `--`.
 */
import { homedir } from 'node:os';
import type { SystemdStep } from '../../shared/types.js';
import { runCommand } from '../run-command.js';
import type { ExecContext, ExecResult, Executor } from './executor.js';
import { errorResult } from './executor.js';
import { validateUnitName } from './validate.js';

export interface SystemdExecutorOptions {
  systemctlPath?: string;
  baseEnv?: NodeJS.ProcessEnv;
}

interface UnitState {
  active: boolean;
  enabled: boolean;
  output: string;
}

/** What has to change for the unit to match the step, in the order it should be done. */
export function systemdActions(
  step: Pick<SystemdStep, 'state' | 'enabled'>,
  current: { active: boolean; enabled: boolean },
): string[] {
  const actions: string[] = [];
  // Enable first: a unit that fails to start is then at least set up for the next boot as asked.
  if (current.enabled !== step.enabled) actions.push(step.enabled ? 'enable' : 'disable');
  if (current.active !== (step.state === 'running'))
    actions.push(step.state === 'running' ? 'start' : 'stop');
  return actions;
}

export function createSystemdExecutor(opts: SystemdExecutorOptions = {}): Executor<SystemdStep> {
  const systemctl = opts.systemctlPath ?? 'systemctl';
  const exec = (args: string[], ctx: ExecContext): Promise<ExecResult> =>
    runCommand(systemctl, args, {
      cwd: homedir(),
      env: { ...(opts.baseEnv ?? process.env), SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' },
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
      onLine: ctx.onLine,
    });

  const readState = async (unit: string, ctx: ExecContext): Promise<UnitState | ExecResult> => {
    const active = await exec(['is-active', '--', unit], ctx);
    if (active.timedOut || active.error) return active;
    const enabled = await exec(['is-enabled', '--', unit], ctx);
    if (enabled.timedOut || enabled.error) return { ...enabled, output: active.output + enabled.output };
    return {
      active: active.exitCode === 0,
      enabled: enabled.exitCode === 0,
      output: active.output + enabled.output,
    };
  };

  return {
    async check(step, ctx) {
      const invalid = validateUnitName(step.unit);
      if (invalid) return errorResult(invalid);
      const state = await readState(step.unit, ctx);
      if (!('active' in state)) return state;
      const wrong = systemdActions(step, state);
      const summary =
        wrong.length === 0
          ? `${step.unit}: ${step.state}, ${step.enabled ? 'enabled' : 'disabled'} as wanted\n`
          : `${step.unit}: ${state.active ? 'active' : 'inactive'} and ${state.enabled ? 'enabled' : 'not enabled'}; wanted ${step.state} and ${step.enabled ? 'enabled' : 'disabled'}\n`;
      return {
        exitCode: wrong.length === 0 ? 0 : 1,
        output: state.output + summary,
        timedOut: false,
        error: null,
      };
    },
    async apply(step, ctx) {
      const invalid = validateUnitName(step.unit);
      if (invalid) return errorResult(invalid);
      const state = await readState(step.unit, ctx);
      if (!('active' in state)) return state;
      let output = state.output;
      let last: ExecResult = { exitCode: 0, output: '', timedOut: false, error: null };
      for (const action of systemdActions(step, state)) {
        last = await exec([action, '--', step.unit], ctx);
        output += last.output;
        if (last.timedOut || last.error || last.exitCode !== 0) break;
      }
      return { ...last, output: output.slice(-4096) };
    },
  };
}
