/**
 * Progress of manual reconciles (`POST /api/v1/reconcile` → `GET /api/v1/reconcile/{id}`).
 * One hash per run with a TTL: `meta`, `fanout` ("pending"|"done"), `a:<agent>` → agent state,
 * `p:<agent>\u0000<task>` → "pending" | outcome, `x:<agent>\u0000<task>` → the execution id last
 * dispatched for it (written at dispatch, so watchers can open its live output before results).
 */

import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../redis/client.js';
import { type Executable, execAll } from '../redis/pipeline.js';
import type { AgentRunState, RunMeta, RunProgress, RunStore } from './run-store.js';
import { summarize } from './run-summary.js';

const TTL_S = 24 * 3600;

// Outcomes of many tasks at once, only into a run that still exists (never recreated without a
// TTL). ARGV: field, outcome, field, outcome, ...
const SET_OUTCOMES = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

interface RunCommands {
  flukeSetRunOutcomes(key: string, ...fieldsAndOutcomes: string[]): Promise<unknown>;
}

export interface RedisRunStoreOptions {
  redis: RedisClient;
  keys: Keys;
}

export class RedisRunStore implements RunStore {
  private readonly redis: RedisClient;
  private readonly keys: Keys;

  constructor({ redis, keys }: RedisRunStoreOptions) {
    this.redis = redis;
    this.keys = keys;
    const r = redis as RedisClient & Partial<RunCommands>;
    // EVALSHA (falling back to EVAL after a script flush), defined once per client.
    if (typeof r.flukeSetRunOutcomes !== 'function') {
      redis.defineCommand('flukeSetRunOutcomes', { numberOfKeys: 1, lua: SET_OUTCOMES });
    }
  }

  async create(meta: RunMeta): Promise<void> {
    const key = this.keys.reconcileRun(meta.id);
    await this.redis
      .multi()
      .hset(key, { meta: JSON.stringify(meta), fanout: 'pending' })
      .expire(key, TTL_S)
      .exec();
  }

  async setAgents(id: string, agents: string[]): Promise<void> {
    const key = this.keys.reconcileRun(id);
    // Like every write here: never recreate an expired run as a key without a TTL.
    if ((await this.redis.exists(key)) === 0) return;
    const fields: Record<string, string> = { fanout: 'done' };
    for (const a of agents) fields[`a:${a}`] = 'pending';
    await this.redis.hset(key, fields);
  }

  async setAgentState(
    id: string,
    agent: string,
    state: AgentRunState,
    tasks: readonly string[] = [],
    executionIds: readonly string[] = [],
  ): Promise<void> {
    const key = this.keys.reconcileRun(id);
    if ((await this.redis.exists(key)) === 0) return;
    // HSETNX: a re-run of the reconcile job must not reset outcomes already in back to pending.
    const tx = this.redis.multi().hset(key, `a:${agent}`, state);
    tasks.forEach((t, i) => {
      tx.hsetnx(key, `p:${agent}\u0000${t}`, 'pending');
      // Plain HSET: a busy agent's retry dispatches a newer execution, and that one will run.
      const execution = executionIds[i];
      if (execution) tx.hset(key, `x:${agent}\u0000${t}`, execution);
    });
    await tx.exec();
  }

  async setOutcome(id: string, agent: string, task: string, outcome: string): Promise<void> {
    const key = this.keys.reconcileRun(id);
    if ((await this.redis.exists(key)) === 0) return;
    await this.redis.hset(key, `p:${agent}\u0000${task}`, outcome);
  }

  /** One round trip. */
  async setOutcomes(
    id: string,
    outcomes: ReadonlyArray<{ agent: string; task: string; outcome: string }>,
  ): Promise<void> {
    if (outcomes.length === 0) return;
    const args: string[] = [];
    for (const o of outcomes) args.push(`p:${o.agent}\u0000${o.task}`, o.outcome);
    // An explicit pipeline (of one): its reply does not wait for the whole tick's auto-pipeline.
    const pipe = this.redis.pipeline() as unknown as Executable & {
      flukeSetRunOutcomes(key: string, ...fieldsAndOutcomes: string[]): unknown;
    };
    pipe.flukeSetRunOutcomes(this.keys.reconcileRun(id), ...args);
    await execAll(pipe);
  }

  async get(id: string): Promise<RunProgress | null> {
    const raw = await this.redis.hgetall(this.keys.reconcileRun(id));
    if (!raw.meta) return null;
    return summarize(JSON.parse(raw.meta) as RunMeta, raw);
  }
}
