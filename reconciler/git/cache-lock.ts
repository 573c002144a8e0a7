/**
 * One queue per cache directory, shared by every source instance in this process: two fetches
 * into one bare repository at once would race on its ref locks and could trigger a needless wipe.
 * Across processes git's own lock files apply (a loser fails with `busy`, never wipes).
 */
const tails = new Map<string, Promise<unknown>>();

export function withCacheLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = tails.get(dir) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => {});
  tails.set(dir, tail);
  void tail.then(() => {
    // The map stays empty when idle: no growth with the number of directories ever used.
    if (tails.get(dir) === tail) tails.delete(dir);
  });
  return run;
}
