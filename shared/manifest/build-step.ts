/** One executor block to a Step, every field defaulted as docs/manifests.md's executor tables say. */
import { SENSITIVE_FIELDS } from '../redact.js';
import { ON_FAILURE, type Step, SYSTEMD_STATES } from '../types.js';
import type { BlockDecl } from './load-file.js';
import { type BuildEnv, ManifestBlockReader } from './manifest-block-reader.js';

const USER_NAME = /^[a-z_][a-z0-9_-]*[$]?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** systemd's unit types (systemd.unit(5)). */
const UNIT = /^[^/\s]+\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$/;

export const SHELL_FIELDS = [
  'check',
  'command',
  'working_dir',
  'run_as',
  'env',
  'on_failure',
  'sensitive',
] as const;
export const SYSTEMD_FIELDS = ['unit', 'state', 'enabled', 'sensitive'] as const;
export const MISE_FIELDS = ['working_dir', 'check_task', 'apply_task', 'sensitive'] as const;

/** `sensitive = [...]`: field names of this executor to redact wherever the step is shown. */
function withSensitive(r: ManifestBlockReader, step: Step): Step {
  const list = r.stringList('sensitive');
  if (list === null) return step;
  const allowed: readonly string[] = SENSITIVE_FIELDS[step.type];
  for (const f of list) {
    if (!allowed.includes(f))
      r.error(
        r.value('sensitive')?.attr ?? r.block,
        `sensitive: "${f}" is not a field of a ${step.type} step that can be hidden (${allowed.join(', ')})`,
      );
  }
  const fields = [...new Set(list.filter((f) => allowed.includes(f)))];
  return { ...step, sensitive: fields };
}

function shell(r: ManifestBlockReader, name: string): Step {
  const check = r.string('check', true);
  const command = r.string('command', true);
  const workingDir = r.string('working_dir', false);
  const runAs = r.string('run_as', false);
  if (runAs !== null && (runAs.length > 32 || !USER_NAME.test(runAs))) {
    r.error(
      r.value('run_as')?.attr ?? r.block,
      `run_as "${runAs}" is not a valid user name (${USER_NAME.source}, at most 32 characters)`,
    );
  }
  const env = r.stringMap('env', (k) =>
    ENV_NAME.test(k) ? null : `"${k}" is not a valid environment variable name`,
  );
  const onFailure = r.enumeration('on_failure', ON_FAILURE, 'abort') ?? 'abort';
  return {
    type: 'shell',
    name,
    check,
    command,
    working_dir: workingDir,
    run_as: runAs,
    env,
    on_failure: onFailure,
  };
}

function systemd(r: ManifestBlockReader, name: string): Step {
  const unit = r.string('unit', true);
  if (unit.trim() !== '' && !UNIT.test(unit)) {
    r.error(
      r.value('unit')?.attr ?? r.block,
      `unit "${unit}" needs a unit type suffix such as .service or .timer`,
    );
  }
  const state = r.enumeration('state', SYSTEMD_STATES, 'running') ?? 'running';
  return { type: 'systemd', name, unit, state, enabled: r.bool('enabled', true) };
}

function mise(r: ManifestBlockReader, name: string, env: BuildEnv): Step {
  const workingDir = r.string('working_dir', true);
  const checkTask = r.string('check_task', false, 'check');
  const applyTask = r.string('apply_task', false, 'apply');
  const [gitBlock] = r.blocks('git', 1);
  let git: { url: string; branch: string } | null = null;
  if (gitBlock) {
    const g = new ManifestBlockReader(gitBlock, `${r.what}: git`, env, ['url', 'branch'], []);
    for (const b of gitBlock.blocks) g.error(b, `unknown block "${b.type}"`);
    git = { url: g.string('url', true), branch: g.string('branch', false, 'main') };
  }
  return { type: 'mise', name, working_dir: workingDir, check_task: checkTask, apply_task: applyTask, git };
}

/** The executor block as a Step; problems go to `env`. */
export function buildStep(block: BlockDecl, env: BuildEnv): Step {
  const name = block.labels[0] ?? '';
  const what = `${block.type} "${name}"`;
  switch (block.type) {
    case 'shell': {
      const r = new ManifestBlockReader(block, what, env, SHELL_FIELDS, []);
      for (const b of block.blocks) r.error(b, `unknown block "${b.type}"`);
      return withSensitive(r, shell(r, name));
    }
    case 'systemd': {
      const r = new ManifestBlockReader(block, what, env, SYSTEMD_FIELDS, []);
      for (const b of block.blocks) r.error(b, `unknown block "${b.type}"`);
      return withSensitive(r, systemd(r, name));
    }
    default: {
      const r = new ManifestBlockReader(block, what, env, MISE_FIELDS, ['git']);
      for (const b of block.blocks)
        if (b.type !== 'git') r.error(b, `unknown block "${b.type}"; expected git`);
      return withSensitive(r, mise(r, name, env));
    }
  }
}
