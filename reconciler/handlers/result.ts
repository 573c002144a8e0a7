/**
 * The results queue's handler: batched results jobs (results/batch.ts), single messages and
 * undeliverable instructions (results/single.ts, which also times out instructions). The rules
 * they apply are shared/result-rules.ts.
 */
import type { ResultJob } from '../../shared/jobs/payloads.js';
import { resultsHandler } from './results/batch.js';
import type { ResultDeps } from './results/deps.js';
import { messageHandler } from './results/single.js';

export { resultsHandler } from './results/batch.js';
export type { MessageDeps, ResultDeps } from './results/deps.js';
export { timeOutTasks } from './results/single.js';

export async function resultHandler(job: ResultJob, deps: ResultDeps): Promise<string> {
  if (job.kind === 'results') return JSON.stringify(await resultsHandler(job, deps));
  return messageHandler(job, deps);
}
