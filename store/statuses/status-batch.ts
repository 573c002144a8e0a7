import type { Keys } from '../../shared/keys.js';
import { isProblem, type TaskStatus } from '../../shared/status.js';
import type { RedisClient } from '../redis/client.js';
import { execSettled, pipelineOf } from '../redis/pipeline.js';
import { lastPerTask, problemMember } from './status-codec.js';
import type { StatusPipeline } from './status-scripts.js';

export /** One agent's statuses, serialised; `fields` NUL-packed unless a task name holds a NUL. */
interface PreparedStatuses {
  agent: string;
  fields: string | string[];
  problems: Array<string | number>;
  fine: string[];
}

export interface BatchContext {
  redis: RedisClient;
  keys: Keys;
  ttlMs: number;
  /** One agent's statuses with plain commands: for a Cluster, or a task name holding a NUL. */
  writeOne(prepared: PreparedStatuses): Promise<void>;
}

/** `pack`: NUL-packed for the batch script (unless a task name holds a NUL). */
export function prepareStatuses(
  agent: string,
  statuses: readonly TaskStatus[],
  previous: ReadonlyMap<string, TaskStatus | null> | undefined,
  pack: boolean,
): PreparedStatuses | null {
  if (statuses.length === 0) return null;
  const fields: string[] = [];
  const problems: Array<string | number> = [];
  const fine: string[] = [];
  let nul = false;
  for (const status of lastPerTask(statuses)) {
    fields.push(status.task, JSON.stringify(status));
    if (status.task.includes('\0')) nul = true;
    if (isProblem(status.outcome)) problems.push(0, problemMember(agent, status.task));
    else {
      // Known to have been fine already: it has no index entry to drop (an extra one at worst).
      const before = previous?.get(status.task);
      if (!before || isProblem(before.outcome)) fine.push(problemMember(agent, status.task));
    }
  }
  // JSON never holds a raw NUL; a task name could only by mistake: plain arguments then.
  return { agent, fields: pack && !nul ? fields.join('\0') : fields, problems, fine };
}

/**
 * Every new problem-index entry (one ZADD), then every agent's statuses (one script each), then
 * the entries of statuses that recovered (one ZREM, for agents whose statuses were written).
 * Settles per agent: one agent's failure does not fail the others.
 */
export async function writeStatusBatch(
  { redis, keys, ttlMs, writeOne }: BatchContext,
  prepared: Array<PreparedStatuses | null>,
): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = prepared.map(() => ({
    status: 'fulfilled',
    value: undefined,
  }));
  const fail = (i: number, reason: unknown) => {
    results[i] = { status: 'rejected', reason };
  };
  // A task name with a NUL, or no pipelines (a Cluster): one agent at a time.
  const single: Promise<void>[] = [];
  const batched: number[] = [];
  prepared.forEach((p, i) => {
    if (!p) return;
    if (typeof p.fields === 'string') batched.push(i);
    else single.push(writeOne(p).catch((err: unknown) => fail(i, err)));
  });
  const problemsKey = keys.statusProblems();
  const problems: Array<string | number> = [];
  for (const i of batched) for (const m of (prepared[i] as PreparedStatuses).problems) problems.push(m);
  if (problems.length > 0) {
    try {
      await redis.zadd(problemsKey, ...problems);
    } catch (err) {
      for (const i of batched) if ((prepared[i] as PreparedStatuses).problems.length > 0) fail(i, err);
    }
  }
  const pipe = pipelineOf(redis) as unknown as StatusPipeline;
  const sent: number[] = [];
  for (const i of batched) {
    const p = prepared[i] as PreparedStatuses;
    if (results[i]?.status === 'rejected') continue;
    pipe.flukeSetStatuses(keys.taskStatus(p.agent), keys.driftEpisodes(p.agent), ttlMs, p.fields as string);
    sent.push(i);
  }
  if (sent.length > 0) {
    const replies = await execSettled(pipe, sent.length);
    sent.forEach((i, j) => {
      const reply = replies[j] as PromiseSettledResult<unknown>;
      if (reply.status === 'rejected') fail(i, reply.reason);
    });
  }
  const fine: string[] = [];
  const removing: number[] = [];
  for (const i of sent) {
    const p = prepared[i] as PreparedStatuses;
    if (results[i]?.status === 'rejected' || p.fine.length === 0) continue;
    for (const m of p.fine) fine.push(m);
    removing.push(i);
  }
  if (fine.length > 0) {
    try {
      await redis.zrem(problemsKey, ...fine);
    } catch (err) {
      for (const i of removing) fail(i, err);
    }
  }
  await Promise.all(single);
  return results;
}
