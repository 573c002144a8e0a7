/**
 * V8 CPU profiles of part of a benchmark: `startCpuProfile()` … `stop(file)`. `serveProfiler` does
 * it for one phase (`--prof-phase <name>` in bench/reconcile.ts): the parent asks each role child
 * over IPC to start just before the phase's trigger and to write the profile when its last result
 * is processed, so a profile holds that cycle and nothing of registration or the other phases.
 * Open the `.cpuprofile` in Chrome DevTools.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname } from 'node:path';

type Msg = Record<string, unknown> & { type: string };

export interface CpuProfile {
  /** Stops profiling and writes the profile to `file`. */
  stop(file: string): Promise<void>;
}

/** Starts the V8 sampling profiler in this process (`intervalUs` between samples). */
export async function startCpuProfile(intervalUs = 1000): Promise<CpuProfile> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** In a role child: answer `profile-start` / `profile-stop {file}` from the parent. */
export function serveProfiler(send: (m: Msg) => void): void {
  let running: Promise<CpuProfile> | null = null;
  process.on('message', (m: Msg) => {
    if (m.type === 'profile-start') {
      running = startCpuProfile();
      void running.then(() => send({ type: 'profiling' }));
    } else if (m.type === 'profile-stop' && running) {
      const file = String(m.file);
      void running.then((p) => p.stop(file)).then(() => send({ type: 'profiled', file }));
      running = null;
    }
  });
}
