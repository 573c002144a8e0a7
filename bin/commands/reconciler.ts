import { runRoleCommand } from './role.js';

export function run(argv: string[]): Promise<number> {
  return runRoleCommand('reconciler', argv);
}
