import type { Labels, MatchExpression, Selector } from './types.js';
import { assertNever } from './types.js';

function expressionHolds(labels: Labels, expr: MatchExpression): boolean {
  const has = Object.hasOwn(labels, expr.key);
  switch (expr.operator) {
    case 'In':
      return has && (expr.values ?? []).includes(labels[expr.key] as string);
    case 'NotIn':
      // As in Kubernetes: a host without the key is "not in" any set.
      return !has || !(expr.values ?? []).includes(labels[expr.key] as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      return assertNever(expr.operator, 'selector operator');
  }
}

/** Does a host with `labels` fall under `selector`? Every match_label and every expression must hold. */
export function matches(labels: Labels, selector: Selector): boolean {
  for (const [key, value] of Object.entries(selector.match_labels)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return selector.match_expressions.every((expr) => expressionHolds(labels, expr));
}

/** A selector with no conditions matches every host (`fluke validate` warns about it). */
export function matchesEverything(selector: Selector): boolean {
  return Object.keys(selector.match_labels).length === 0 && selector.match_expressions.length === 0;
}
