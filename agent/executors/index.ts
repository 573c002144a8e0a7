/**
 * The executors an agent runs with, and which of them this host can actually offer (reported at
 * registration so the server can tell "no systemd here" from a failing step).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { ExecutorType } from '../../shared/types.js';
import type { Executors } from './executor.js';
import { createMiseExecutor } from './mise.js';
import { createShellExecutor } from './shell.js';
import { createSystemdExecutor } from './systemd.js';

export interface ExecutorOptions {
  defaultShell: string;
  miseBin?: string;
  systemctlPath?: string;
}

export function createExecutors(opts: ExecutorOptions): Executors {
  return {
    shell: createShellExecutor({ defaultShell: opts.defaultShell }),
    systemd: createSystemdExecutor({ systemctlPath: opts.systemctlPath }),
    mise: createMiseExecutor({ miseBin: opts.miseBin }),
  };
}

/** An executable file named `name` in one of PATH's directories (or `name` itself if it has a slash). */
export function findOnPath(name: string, pathVar = process.env['PATH'] ?? ''): string | null {
  const candidates = name.includes('/')
    ? [name]
    : pathVar
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here; keep looking
    }
  }
  return null;
}

export function availableExecutors(opts: ExecutorOptions, pathVar?: string): ExecutorType[] {
  const found: ExecutorType[] = [];
  if (findOnPath(opts.defaultShell, pathVar)) found.push('shell');
  if (findOnPath(opts.systemctlPath ?? 'systemctl', pathVar)) found.push('systemd');
  if (findOnPath(opts.miseBin ?? 'mise', pathVar)) found.push('mise');
  return found;
}
