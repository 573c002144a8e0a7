import { runRole } from '../services.js';

export function run(argv: string[]): Promise<number> {
  return runRole('reconciler', argv);
}
