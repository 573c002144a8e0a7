/**
 * The reconciler's results path alone, in one process, against a private Redis: how much CPU one
 * satisfied drift check's task results cost in `resultsHandler`, without BullMQ, the gateway or
 * simulated sockets. Isolates the handler from the full cycle in bench/reconcile.ts.
 *
 *   node --import tsx bench/results-handler.ts [--agents 2000] [--tasks 20] [--rounds 3] [--cpu-prof DIR]
 *
 * Each round dispatches one drift-check instruction per agent (saved as the reconciler saves it),
 * then handles a receipt and one satisfied task_result per task in batched jobs of ≤ 500
 * messages, 50 jobs at a time (the results worker's concurrency). Round 1 finds no statuses (every
 * result is recorded); later rounds are quiet checks. Reports CPU ms per agent per round (the
 * whole process: GC threads included) and the main-thread GC pauses within it. --cpu-prof writes
 * a CPU profile of the handler alone for round 1 and for the last round into DIR.
 */
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pino from 'pino';
import { resultHandler } from '../reconciler/handlers/result.js';
import type { ResultJob } from '../shared/jobs/payloads.js';
import { Keys } from '../shared/keys.js';
import { encodeRegistryEntry } from '../shared/registry-entry.js';
import { RedisEventStore } from '../store/events/redis-event-store.js';
import { RedisInstructionStore } from '../store/instructions/redis-instruction-store.js';
import { RedisAgentDirectory } from '../store/registry/redis-agent-directory.js';
import { RedisRunStore } from '../store/runs/redis-run-store.js';
import { RedisStatusStore } from '../store/statuses/redis-status-store.js';
import { startRedis } from '../testkit/redis.js';
import { startCpuProfile } from './phase-profiler.js';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '2000' },
    tasks: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    /** Write a CPU profile of the handler alone per round kind: DIR/results-handler-{first,quiet}.cpuprofile. */
    'cpu-prof': { type: 'string' },
  },
});
const AGENTS = Number(args.agents);
const TASKS = Number(args.tasks);
const ROUNDS = Number(args.rounds);
const BATCH = 500;
const CONCURRENCY = 50;

const redisServer = await startRedis();
const keys = new Keys(redisServer.prefix);
const store = new Redis(redisServer.url, { enableAutoPipelining: true, maxRetriesPerRequest: null });
const ttlMs = 3600_000;
const instructions = new RedisInstructionStore({ redis: store, keys });
const statuses = new RedisStatusStore({ redis: store, keys, ttlMs });
const events = new RedisEventStore({ redis: store, keys, ttlMs });
const directory = new RedisAgentDirectory({ redis: store, keys, staleAfterMs: 60_000, knownForMs: ttlMs });
const runs = new RedisRunStore({ redis: store, keys });
const logger = pino({ level: 'warn' });

const names = Array.from({ length: AGENTS }, (_, i) => `sim-${String(i).padStart(6, '0')}`);
const tasks = Array.from({ length: TASKS }, (_, i) => `task_${String(i).padStart(3, '0')}`);
const now = Date.now();
{
  const pipe = store.pipeline();
  for (const name of names) {
    pipe.hset(
      keys.agent(name),
      encodeRegistryEntry({
        name,
        labels: { role: 'web', env: 'bench' },
        gateway_id: 'gw',
        session_id: `s-${name}`,
        connected_at: now,
        last_seen: now,
        agent_version: 'bench',
        executors: ['shell'],
        running: [],
      }),
    );
  }
  await pipe.exec();
}

const deps = {
  instructions,
  events,
  statuses,
  runs,
  labelsOf: async (agent: string) => (await directory.get(agent))?.labels ?? {},
  enqueueAlert: async () => {},
  retryLater: async () => {},
  logger,
};

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

const profDir = args['cpu-prof'];

// Main-thread GC pauses (PerformanceObserver 'gc'), summed per round.
let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
});
gcObserver.observe({ entryTypes: ['gc'] });

const rows: string[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const at = new Date().toISOString();
  const items: Extract<ResultJob, { kind: 'results' }>['items'] = [];
  await pool(names, 100, async (agent) => {
    const id = `r${round}-${agent}`;
    await instructions.save({
      instruction_id: id,
      agent,
      session_id: `s-${agent}`,
      trigger: 'drift_check',
      run_id: null,
      revision: 'c0ffee',
      created_at: at,
      retry: 0,
      tasks: tasks.map((task, i) => ({
        task,
        execution_id: `${id}.${i}`,
        mode: 'apply',
        policy: 'remediate',
      })),
    });
  });
  for (const agent of names) {
    const id = `r${round}-${agent}`;
    const received_at = new Date().toISOString();
    items.push({
      agent,
      session_id: `s-${agent}`,
      received_at,
      message: { type: 'instruction_receipt', instruction_id: id, accepted: true, reason: null },
    });
    tasks.forEach((task, i) => {
      items.push({
        agent,
        session_id: `s-${agent}`,
        received_at,
        message: {
          type: 'task_result',
          result_id: `${id}-${i}`,
          instruction_id: id,
          execution_id: `${id}.${i}`,
          task,
          mode: 'apply',
          outcome: 'satisfied',
          started_at: at,
          finished_at: at,
          duration_ms: 0,
          steps: [
            {
              step: 'config',
              type: 'shell',
              outcome: 'satisfied',
              exit_code: 0,
              apply_exit_code: null,
              duration_ms: 0,
              output_tail: '',
              error: null,
            },
          ],
        },
      });
    });
  }
  const jobs: ResultJob[] = [];
  for (let i = 0; i < items.length; i += BATCH)
    jobs.push({ kind: 'results', gateway_id: 'gw', items: items.slice(i, i + BATCH) });
  // Profile round 1 and the last quiet round.
  const profiled = profDir && (round === 1 || (round === ROUNDS && round > 1));
  const profile = profiled ? await startCpuProfile() : null;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const gc0 = gcMs;
  await pool(jobs, CONCURRENCY, (job) => resultHandler(job, deps));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // Entries are delivered asynchronously: let the last ones of the round in.
  await new Promise((resolve) => setImmediate(resolve));
  const gc = gcMs - gc0;
  if (profile && profDir) {
    await profile.stop(join(profDir, `results-handler-${round === 1 ? 'first' : 'quiet'}.cpuprofile`));
  }
  const cpuMs = (cpu.user + cpu.system) / 1000;
  rows.push(
    `| ${round} | ${round === 1 ? 'first (recorded)' : 'quiet'} | ${items.length} | ${wall.toFixed(0)} | ${cpuMs.toFixed(0)} | ${gc.toFixed(0)} | ${(cpuMs / AGENTS).toFixed(3)} |`,
  );
}
gcObserver.disconnect();
store.disconnect();
await redisServer.stop();
process.stdout.write(
  `results handler, ${AGENTS} agents × ${TASKS} tasks, batches of ${BATCH}, ${CONCURRENCY} at a time\n\n| round | kind | messages | wall ms | handler CPU ms | GC pauses ms | CPU ms / agent |\n|---:|---|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n`,
);
