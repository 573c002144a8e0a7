/**
 * Explicit Redis pipelines: whether a client can carry one, and its replies unwrapped. A batch
 * goes out as one explicit pipeline, which resolves as soon as its own replies are in (an
 * auto-pipelined command resolves only with the whole tick's pipeline).
 */
import { type ChainableCommander, Cluster, type Redis } from 'ioredis';

/** What `pipeline().exec()` resolves to: per command, its error or its reply. */
export type PipelineReplies = Array<[Error | null, unknown]> | null;

/** A pipeline (or any ChainableCommander) to run. */
export interface Executable {
  exec(): Promise<PipelineReplies>;
}

/** A Cluster cannot pipeline across slots: single commands there. */
export function canPipeline(redis: Redis | Cluster): boolean {
  return !(redis as { isCluster?: boolean }).isCluster;
}

/**
 * A pipeline that works on a Cluster too. On one Redis it is `redis.pipeline()`. A Cluster
 * pipeline must keep to one node's slots, and a batch of many agents or executions spans them
 * all: there the commands are recorded and `exec()` sends each on its own, all at once (an
 * auto-pipelined client batches them per node in one write), replies in order as a pipeline's.
 * Like a pipeline, it is not a transaction: callers that need atomicity use one slot's script.
 */
export function pipelineOf(redis: Redis | Cluster): ChainableCommander {
  if (!(redis instanceof Cluster)) return redis.pipeline();
  const calls: Array<{ name: string; args: unknown[] }> = [];
  const target = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const exec = async (): Promise<PipelineReplies> =>
    Promise.all(
      calls.map(({ name, args }) =>
        (target[name] as (...a: unknown[]) => Promise<unknown>).apply(redis, args).then(
          (value): [Error | null, unknown] => [null, value],
          (err: unknown): [Error | null, unknown] => [
            err instanceof Error ? err : new Error(String(err)),
            null,
          ],
        ),
      ),
    );
  const recorder: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_, prop) {
      if (prop === 'exec') return exec;
      if (prop === 'length') return calls.length;
      if (typeof prop !== 'string' || typeof target[prop] !== 'function') return undefined;
      return (...args: unknown[]) => {
        calls.push({ name: prop, args });
        return recorder;
      };
    },
  });
  return recorder;
}

/** Runs the pipeline: its replies, or the first command's error (or the abort) thrown. */
export async function execAll(pipe: Executable): Promise<unknown[]> {
  const replies = await pipe.exec();
  if (!replies) throw aborted();
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/**
 * Runs the pipeline of `count` commands, settled per command: each its own error or reply;
 * every one rejected when exec() fails, and aborted when the pipeline was.
 */
export async function execSettled(pipe: Executable, count: number): Promise<PromiseSettledResult<unknown>[]> {
  let replies: PipelineReplies;
  try {
    replies = await pipe.exec();
  } catch (reason) {
    return Array.from(
      { length: count },
      (): PromiseSettledResult<unknown> => ({ status: 'rejected', reason }),
    );
  }
  return Array.from({ length: count }, (_, i): PromiseSettledResult<unknown> => {
    const reply = replies?.[i];
    if (!reply) return { status: 'rejected', reason: aborted() };
    const [err, value] = reply;
    return err ? { status: 'rejected', reason: err } : { status: 'fulfilled', value };
  });
}

function aborted(): Error {
  return new Error('redis pipeline aborted');
}
