/**
 * Instruction deadlines on in-memory fakes: more time while the agent runs it, timeouts after
 * MISSES_ALLOWED checks or maxWaitMs, many deadlines per job.
 */
import t from 'tap';
import { type DeadlineDeps, deadlineHandler, MISSES_ALLOWED } from '../reconciler/handlers/deadline.js';
import { deadlinesHandler } from '../reconciler/handlers/reconcile-agents.js';
import type { DeadlineJob } from '../shared/jobs/payloads.js';
import { MemoryInstructionStore } from '../store/instructions/memory-instruction-store.js';
import { HOUR, instruction, T0 } from './helpers/handler-worlds.js';

// ---- deadline ------------------------------------------------------------------------------------

function deadlineWorld(opts: { maxWaitMs?: number } = {}) {
  const instructions = new MemoryInstructionStore();
  let running = true;
  let clock = T0;
  const rescheduled: [DeadlineJob, number][] = [];
  const timedOut: [string, string[], number][] = [];
  const deps: DeadlineDeps = {
    getInstruction: (id) => instructions.get(id),
    isRunning: async () => running,
    timeOut: async (record, tasks, waited) => {
      timedOut.push([record.instruction_id, tasks, waited]);
    },
    reschedule: async (data, delay) => {
      rescheduled.push([data, delay]);
    },
    checkEveryMs: 5000,
    maxWaitMs: opts.maxWaitMs ?? HOUR,
    now: () => clock,
  };
  return {
    instructions,
    rescheduled,
    timedOut,
    setRunning: (r: boolean) => {
      running = r;
    },
    advance: (ms: number) => {
      clock += ms;
    },
    check: (data: DeadlineJob) => deadlineHandler(data, deps),
  };
}

t.test('deadlineHandler', async (t) => {
  t.test('finished: the record is gone or has nothing pending', async (t) => {
    const w = deadlineWorld();
    t.equal(await w.check({ instruction_id: 'i-none', misses: 0 }), 'finished');
    const record = instruction('i-1');
    await w.instructions.save(record);
    await w.instructions.finishTask('i-1', 'web_config', 'applied');
    t.equal(await w.check({ instruction_id: 'i-1', misses: 2 }), 'finished');
    t.same(w.rescheduled, []);
    t.same(w.timedOut, []);
  });

  t.test('a running instruction gets more time, and its misses start over', async (t) => {
    const w = deadlineWorld();
    await w.instructions.save(instruction('i-1'));
    w.advance(5000);
    t.equal(await w.check({ instruction_id: 'i-1', misses: 2 }), 'waiting');
    t.same(w.rescheduled, [[{ instruction_id: 'i-1', misses: 0 }, 5000]]);
  });

  t.test('not running: misses count up and time out at MISSES_ALLOWED', async (t) => {
    const w = deadlineWorld();
    await w.instructions.save(
      instruction('i-1', {
        tasks: [
          ['a', 'apply', 'remediate'],
          ['b', 'check', 'alert_only'],
        ],
      }),
    );
    await w.instructions.finishTask('i-1', 'a', 'applied');
    w.setRunning(false);
    let data: DeadlineJob = { instruction_id: 'i-1', misses: 0 };
    let checks = 0;
    for (;;) {
      w.advance(5000);
      checks += 1;
      const outcome = await w.check(data);
      if (outcome !== 'waiting') {
        t.equal(outcome, 'timed_out');
        break;
      }
      const next = w.rescheduled.at(-1);
      if (!next) throw new Error('waiting without a reschedule');
      t.equal(next[0].misses, checks, 'one more miss');
      data = next[0];
    }
    t.equal(checks, MISSES_ALLOWED);
    t.same(w.timedOut, [['i-1', ['b'], MISSES_ALLOWED * 5000]], 'only the pending task times out');
  });

  t.test('one check that finds it running resets the count', async (t) => {
    const w = deadlineWorld();
    await w.instructions.save(instruction('i-1'));
    const pattern = [false, false, true, false, false, true, false, false];
    let data: DeadlineJob = { instruction_id: 'i-1', misses: 0 };
    for (const r of pattern) {
      w.setRunning(r);
      t.equal(await w.check(data), 'waiting');
      const next = w.rescheduled.at(-1);
      if (!next) throw new Error('no reschedule');
      data = next[0];
    }
    t.same(w.timedOut, []);
  });

  t.test('past maxWaitMs it times out, even while the agent says it runs it', async (t) => {
    const w = deadlineWorld({ maxWaitMs: 60_000 });
    await w.instructions.save(instruction('i-1'));
    w.advance(59_999);
    t.equal(await w.check({ instruction_id: 'i-1', misses: 0 }), 'waiting');
    w.advance(1);
    t.equal(await w.check({ instruction_id: 'i-1', misses: 0 }), 'timed_out');
    t.same(w.timedOut, [['i-1', ['web_config'], 60_000]]);
  });
});

t.test(
  'deadlinesHandler: each checked as deadline does; the waiting ones rescheduled together',
  async (t) => {
    const w = deadlineWorld();
    for (const id of ['i-1', 'i-2', 'i-3']) await w.instructions.save(instruction(id));
    await w.instructions.finishTask('i-1', 'web_config', 'applied');
    w.setRunning(false);
    w.advance(5000);
    const again: [DeadlineJob[], number][] = [];
    const counts = await deadlinesHandler(
      {
        checks: [
          { instruction_id: 'i-1', misses: 0 },
          { instruction_id: 'i-2', misses: 0 },
          { instruction_id: 'i-3', misses: MISSES_ALLOWED - 1 },
        ],
      },
      {
        getInstruction: (id) => w.instructions.get(id),
        isRunning: async () => false,
        timeOut: async (record, tasks, waited) => {
          w.timedOut.push([record.instruction_id, tasks, waited]);
        },
        rescheduleAll: async (checks, delay) => {
          again.push([checks, delay]);
        },
        checkEveryMs: 5000,
        maxWaitMs: HOUR,
        now: () => T0 + 5000,
      },
    );
    t.same(counts, { finished: 1, waiting: 1, timed_out: 1 });
    t.same(again, [[[{ instruction_id: 'i-2', misses: 1 }], 5000]]);
    t.same(w.timedOut, [['i-3', ['web_config'], 5000]]);
  },
);
