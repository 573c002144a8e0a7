/** One `task` block to a CompiledTask: selector, drift policy and steps in declaration order. */
import { isMap, typeName, type Value } from '../hcl/eval/value.js';
import { matchesEverything } from '../selector.js';
import {
  type CompiledTask,
  DRIFT_POLICIES,
  EXECUTOR_TYPES,
  type MatchExpression,
  SELECTOR_OPERATORS,
  type SelectorOperator,
  type Step,
} from '../types.js';
import { buildStep } from './build-step.js';
import type { BlockDecl } from './load-file.js';
import { type BuildEnv, IDENTIFIER, ManifestBlockReader } from './manifest-block-reader.js';

const TASK_BLOCKS = ['drift', 'selector', ...EXECUTOR_TYPES];

function matchExpression(item: Value, at: string, fail: (m: string) => void): MatchExpression | null {
  if (!isMap(item)) {
    fail(
      `${at} must be an object like { key = "zone", operator = "In", values = ["a"] }, got ${typeName(item)}`,
    );
    return null;
  }
  for (const k of item.keys())
    if (!['key', 'operator', 'values'].includes(k)) fail(`${at}: unknown field "${k}"`);
  const key = item.get('key');
  const operator = item.get('operator');
  const values = item.has('values') ? (item.get('values') ?? null) : undefined;
  let ok = true;
  if (typeof key !== 'string' || key === '') {
    fail(`${at}: key must be a non-empty string, got ${key === undefined ? 'nothing' : typeName(key)}`);
    ok = false;
  }
  if (typeof operator !== 'string' || !(SELECTOR_OPERATORS as readonly string[]).includes(operator)) {
    const shown =
      typeof operator === 'string'
        ? `"${operator}"`
        : operator === undefined
          ? 'nothing'
          : `a ${typeName(operator)}`;
    fail(`${at}: operator must be one of ${SELECTOR_OPERATORS.join(', ')}; got ${shown}`);
    return null;
  }
  const op = operator as SelectorOperator;
  const needsValues = op === 'In' || op === 'NotIn';
  if (!needsValues) {
    if (values !== undefined && values !== null) fail(`${at}: values must not be set for operator ${op}`);
    return ok ? { key: key as string, operator: op, values: null } : null;
  }
  if (values === undefined || values === null) {
    fail(`${at}: values is required for operator ${op}`);
    return null;
  }
  if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) {
    fail(`${at}: values must be a list of strings`);
    return null;
  }
  return ok ? { key: key as string, operator: op, values: values as string[] } : null;
}

function selector(task: ManifestBlockReader, env: BuildEnv, name: string): CompiledTask['selector'] {
  const [block] = task.blocks('selector', 1);
  const out: CompiledTask['selector'] = { match_labels: {}, match_expressions: [] };
  if (!block) {
    task.error(task.block, 'missing selector block (use selector { match_labels = { ... } })');
    return out;
  }
  const r = new ManifestBlockReader(
    block,
    `task "${name}": selector`,
    env,
    ['match_labels', 'match_expressions'],
    [],
  );
  for (const b of block.blocks) r.error(b, `unknown block "${b.type}"`);
  out.match_labels = r.stringMap('match_labels');
  const got = r.value('match_expressions');
  if (got && got.value !== null) {
    const fail = (m: string): void => r.error(got.attr, m);
    if (!Array.isArray(got.value)) fail(`match_expressions must be a list, got ${typeName(got.value)}`);
    else {
      got.value.forEach((item, i) => {
        const expr = matchExpression(item, `match_expressions[${i}]`, fail);
        if (expr) out.match_expressions.push(expr);
      });
    }
  }
  if (matchesEverything(out))
    env.warning(block.line, block.column, `task "${name}": selector matches every host`);
  return out;
}

/** The task as compiled; problems go to `env` and bad fields read as their defaults. */
export function buildTask(block: BlockDecl, env: BuildEnv, maxSteps: number): CompiledTask {
  const name = block.labels[0] ?? '';
  const task = new ManifestBlockReader(block, `task "${name}"`, env, ['description'], TASK_BLOCKS);
  const description = task.string('description', false);
  const [driftBlock] = task.blocks('drift', 1);
  let drift: CompiledTask['drift'] = null;
  if (driftBlock) {
    const d = new ManifestBlockReader(driftBlock, `task "${name}": drift`, env, ['policy'], []);
    for (const b of driftBlock.blocks) d.error(b, `unknown block "${b.type}"`);
    const policy = d.enumeration('policy', DRIFT_POLICIES, null);
    if (policy) drift = { policy };
  }
  const sel = selector(task, env, name);
  const steps: Step[] = [];
  const seen = new Map<string, number>();
  for (const b of block.blocks) {
    if (b.type === 'drift' || b.type === 'selector') continue;
    if (!(EXECUTOR_TYPES as readonly string[]).includes(b.type)) {
      const kind = b.labels.length === 1 ? 'executor type' : 'block';
      task.error(
        b,
        `unknown ${kind} "${b.type}" (expected drift, selector, or an executor: ${EXECUTOR_TYPES.join(', ')})`,
      );
      continue;
    }
    if (b.labels.length !== 1) {
      task.error(b, `a ${b.type} block takes exactly one name, as in ${b.type} "name" { ... }`);
      continue;
    }
    const stepName = b.labels[0] as string;
    if (!IDENTIFIER.test(stepName))
      task.error(b, `step name "${stepName}" is not an identifier (letters, digits, _ and -)`);
    const previous = seen.get(stepName);
    if (previous !== undefined)
      task.error(b, `step "${stepName}" is declared twice (lines ${previous} and ${b.line})`);
    seen.set(stepName, b.line);
    if (steps.length === maxSteps) task.error(b, `more than ${maxSteps} steps`);
    if (steps.length >= maxSteps) continue;
    steps.push(buildStep(b, env));
  }
  if (steps.length === 0) env.warning(block.line, block.column, `task "${name}" has no steps`);
  return { name, description, selector: sel, drift, steps };
}
