/**
 * Explicit Redis pipelines: whether a client can carry one, and its replies unwrapped. A batch
 * goes out as one explicit pipeline, which resolves as soon as its own replies are in (an
 * auto-pipelined command resolves only with the whole tick's pipeline).
 */
import type { Cluster, Redis } from 'ioredis';

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
