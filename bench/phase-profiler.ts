/**
 * CPU profiles of one benchmark phase only (`--prof-phase <name>` in bench/reconcile.ts): the
 * parent asks each role child over IPC to start the V8 profiler just before the phase's trigger
 * and to write the profile when its last result is processed, so a profile holds that cycle and
 * nothing of registration or the other phases. Open the `.cpuprofile` in Chrome DevTools.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

type Msg = Record<string, unknown> & { type: string };

/** In a role child: answer `profile-start` / `profile-stop {file}` from the parent. */
export function serveProfiler(send: (m: Msg) => void): void {
  let session: Session | null = null;
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session?.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  process.on('message', (m: Msg) => {
    if (m.type === 'profile-start') {
      session = new Session();
      session.connect();
      void post('Profiler.enable')
        .then(() => post('Profiler.setSamplingInterval', { interval: 1000 }))
        .then(() => post('Profiler.start'))
        .then(() => send({ type: 'profiling' }));
    } else if (m.type === 'profile-stop') {
      void post('Profiler.stop').then((result) => {
        writeFileSync(String(m.file), JSON.stringify((result as { profile: unknown }).profile));
        session?.disconnect();
        session = null;
        send({ type: 'profiled', file: m.file });
      });
    }
  });
}
