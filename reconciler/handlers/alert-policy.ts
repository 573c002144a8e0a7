/**
 * A commit whose tasks would alert while the server has no `alert_webhook` is a bad commit:
 * The contract (docs/configuration.md) makes the webhook required "when any effective policy alerts", and only the compiled
 * manifests say whether one does. Pure.
 */
import type { CompileResult } from '../../shared/manifest/compile.js';
import { effectivePolicy } from '../../shared/plan.js';
import type { DriftPolicy } from '../../shared/types.js';

export function checkAlertWebhook(
  result: CompileResult,
  drift: { policy: DriftPolicy; alert_webhook: string | null },
): CompileResult {
  if (drift.alert_webhook || result.errors.length > 0) return result;
  const errors = result.state.tasks
    .filter((t) => effectivePolicy(t, drift.policy) !== 'remediate')
    .map((t) => {
      const at = result.sources[t.name] ?? { file: '?', line: 0 };
      return {
        file: at.file,
        line: at.line,
        message: `task "${t.name}" has drift policy "${effectivePolicy(t, drift.policy)}", which sends alerts, but server.drift.alert_webhook is not set`,
      };
    });
  return errors.length === 0 ? result : { ...result, errors };
}
