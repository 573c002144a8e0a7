/**
 * Secrets stay secret: the one place that decides what a secret looks like on the way out of
 * Fluke. Pure. Every exit (HTTP API, web UI through the API, events, alerts, Bull Board job data,
 * logs, the agent's git sync output) calls these instead of its own rule. docs/security.md.
 *
 * - Step `env` values are always replaced by REDACTED (keys kept); fields a step lists in
 *   `sensitive` too.
 * - URL credentials inside any text: see `redactSecrets`.
 * - Job data for Bull Board: ids become a short hint, URLs and tokens disappear (`redactJobData`).
 */
import { createHash } from 'node:crypto';
import type { CompiledTask, Step } from './types.js';

export const REDACTED = '[redacted]';
/** What stands in for the credentials of a URL. */
export const REDACTED_USERINFO = '***';

/** Fields a step may list in `sensitive`, per executor (`env` is always sensitive). */
export const SENSITIVE_FIELDS = {
  shell: ['check', 'command', 'working_dir', 'run_as', 'env'],
  systemd: ['unit'],
  mise: ['working_dir', 'check_task', 'apply_task', 'git'],
} as const satisfies Record<Step['type'], readonly string[]>;

// scheme://userinfo@ — userinfo runs to the last '@' before a '/', whitespace or quote (a
// password with an unencoded '@' is still all hidden).
const SCHEME_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*):\/\/([^\s/'"<>`]+)@/g;
// scp-like user:password@host:path (git accepts no password there, but a pasted one is still one).
const SCP_PASSWORD = /(^|[\s'"(<=`])([A-Za-z0-9._~-]+):([^\s@/:'"<>`]+)@([A-Za-z0-9.-]+):/g;
const SSH_SCHEMES = new Set(['ssh', 'git+ssh', 'ssh+git']);

/**
 * Strips credentials from every URL inside `text` (a message, an error, a log line, output):
 * - `ssh://`, `git+ssh://`, `ssh+git://`: the user is a login name and is kept (`ssh://git@host`);
 *   a password after it becomes `***` (`ssh://git:***@host`).
 * - every other scheme (`https://`, `http://`, `git://`, `redis://`, …): the whole userinfo
 *   becomes `***` (`https://***@host`), because over those a token often is the user part
 *   (`https://<token>@host`, `https://<token>:x-oauth-basic@host`).
 * - scp-like `user:password@host:path`: the password becomes `***`; plain `git@host:org/repo`
 *   carries no secret and is kept.
 */
export function redactSecrets(text: string): string {
  if (!text.includes('@')) return text;
  return text
    .replace(SCHEME_USERINFO, (_m, scheme: string, userinfo: string) => {
      if (!SSH_SCHEMES.has(scheme.toLowerCase())) return `${scheme}://${REDACTED_USERINFO}@`;
      const colon = userinfo.indexOf(':');
      return colon < 0
        ? `${scheme}://${userinfo}@`
        : `${scheme}://${userinfo.slice(0, colon)}:${REDACTED_USERINFO}@`;
    })
    .replace(
      SCP_PASSWORD,
      (_m, before: string, user: string, _password: string, host: string) =>
        `${before}${user}:${REDACTED_USERINFO}@${host}:`,
    );
}

/** One URL without its credentials (the same rule as `redactSecrets`). */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}

/** A short, non-reversible stand-in for an id: enough to tell two apart, not to use one. */
export function idHint(id: string): string {
  return `${createHash('sha256').update(id).digest('hex').slice(0, 6)}…`;
}

/** A stable, non-reversible stand-in for an id where it must stay unique (BullMQ job ids). */
export function opaqueId(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}

function redactMap(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(map).map((k) => [k, REDACTED]));
}

/** A step as it may be shown: env values and its `sensitive` fields replaced, URLs stripped. */
export function redactStep(step: Step): Step {
  const hidden = new Set<string>(step.sensitive ?? []);
  const hide = (field: string, value: string): string =>
    hidden.has(field) ? REDACTED : redactSecrets(value);
  switch (step.type) {
    case 'shell':
      return {
        ...step,
        check: hide('check', step.check),
        command: hide('command', step.command),
        working_dir: step.working_dir === null ? null : hide('working_dir', step.working_dir),
        run_as: step.run_as === null ? null : hide('run_as', step.run_as),
        env: redactMap(step.env),
      };
    case 'systemd':
      return { ...step, unit: hide('unit', step.unit) };
    case 'mise':
      return {
        ...step,
        working_dir: hide('working_dir', step.working_dir),
        check_task: hide('check_task', step.check_task),
        apply_task: hide('apply_task', step.apply_task),
        git:
          step.git === null ? null : { url: hide('git', step.git.url), branch: hide('git', step.git.branch) },
      };
  }
}

/** A compiled task as the API and UI show it. */
export function redactTask<T extends Pick<CompiledTask, 'steps'>>(task: T): T {
  return { ...task, steps: task.steps.map(redactStep) };
}

/**
 * The values a step's run must never show in its output: env values and sensitive fields (at
 * least 4 characters; a shorter value would mask ordinary text).
 */
export function secretValues(step: Step): string[] {
  const hidden = new Set<string>(step.sensitive ?? []);
  const values: string[] = [];
  if (step.type === 'shell') {
    values.push(...Object.values(step.env));
    for (const f of ['check', 'command', 'working_dir', 'run_as'] as const) {
      const v = step[f];
      if (hidden.has(f) && v) values.push(v);
    }
  } else if (step.type === 'systemd') {
    if (hidden.has('unit')) values.push(step.unit);
  } else {
    for (const f of ['working_dir', 'check_task', 'apply_task'] as const)
      if (hidden.has(f)) values.push(step[f]);
    if (hidden.has('git') && step.git) values.push(step.git.url);
  }
  return [...new Set(values.filter((v) => v.length >= 4))].sort((a, b) => b.length - a.length);
}

/** `text` with every one of `values` replaced by REDACTED, and URL credentials stripped. */
export function maskValues(text: string, values: readonly string[]): string {
  let out = text;
  for (const v of values) if (out.includes(v)) out = out.split(v).join(REDACTED);
  return redactSecrets(out);
}

/** Job-data keys whose values are ids: shown as a hint. */
const ID_KEYS = new Set([
  'instruction_id',
  'execution_id',
  'result_id',
  'session_id',
  'running',
  'run_id',
  // An alert's drift episode is named after the execution that opened it.
  'episode_id',
]);
/** Job-data keys whose values are secrets or lead to one: never shown. */
const SECRET_KEYS = new Set([
  'url',
  'alert_webhook',
  'webhook',
  'token',
  'tokens',
  'password',
  'secret',
  'authorization',
]);

// "instruction i25-mxasmp2m", "execution i25-mxasmp2m.0": how messages (an agent's refusal
// reason, a handler's error) name an id in prose.
const ID_IN_TEXT = /\b(instruction|execution)( id)?( |: |=)([A-Za-z0-9._~-]{4,})/gi;

/** Text for Bull Board: URL credentials stripped, and ids named in prose shown as hints. */
export function redactBoardText(text: string): string {
  return redactSecrets(text).replace(
    ID_IN_TEXT,
    (_m, what: string, idWord: string | undefined, sep: string, id: string) =>
      `${what}${idWord ?? ''}${sep}${idHint(id)}`,
  );
}

function redactValue(key: string | null, value: unknown, depth: number): unknown {
  if (depth > 20) return REDACTED;
  if (key !== null && SECRET_KEYS.has(key)) return REDACTED;
  if (key === 'env' && value && typeof value === 'object' && !Array.isArray(value))
    return redactMap(value as Record<string, string>);
  if (typeof value === 'string')
    return key !== null && ID_KEYS.has(key) ? idHint(value) : redactBoardText(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(key, v, depth + 1));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(k, v, depth + 1)]));
  }
  return value;
}

/**
 * A job's data (or return value) as Bull Board shows it: instruction, execution, result, session
 * run and episode ids as `idHint`s, also where text names one ("instruction <id>"); URLs, tokens
 * and passwords as REDACTED; env values as REDACTED; URL credentials in any other text stripped.
 * The job itself is untouched.
 */
export function redactJobData(data: unknown): unknown {
  return redactValue(null, data, 0);
}
