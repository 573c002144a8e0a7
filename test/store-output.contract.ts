/**
 * The live output contract (store/output/output.ts), run against the memory twin and the Redis
 * implementation by store-output.test.ts. Replay lists are capped at BUFFER_LINES.
 */
import type { Test } from 'tap';
import { isEndRecord, parseStreamRecord } from '../shared/output-record.js';
import type { EndRecord, OutputLog, OutputRecord } from '../store/output/output.js';
import { waitFor } from '../testkit/system.js';

export const BUFFER_LINES = 3;

function line(execution: string, text: string): OutputRecord {
  return {
    agent: 'web-01',
    execution_id: execution,
    task: 'motd',
    step: 'write',
    phase: 'apply',
    stream: 'stdout',
    line: text,
    at: 1,
  };
}

function end(execution: string): EndRecord {
  return { kind: 'end', agent: 'web-01', execution_id: execution, task: 'motd', outcome: 'applied', at: 2 };
}

export function outputContract(t: Test, make: () => Promise<OutputLog>) {
  t.test('records are replayed in order, the newest kept, per execution', async (t) => {
    const log = await make();
    t.same(await log.replay('x-1'), []);
    await log.append([line('x-1', 'a'), line('x-2', 'other'), line('x-1', 'b')]);
    await log.append([]);
    await log.append([line('x-1', 'c'), line('x-1', 'd'), end('x-1')]);
    const replayed = (await log.replay('x-1')).map(parseStreamRecord);
    t.same(replayed, [line('x-1', 'c'), line('x-1', 'd'), end('x-1')], `capped at ${BUFFER_LINES}`);
    t.ok(replayed[2] && isEndRecord(replayed[2]), 'the end record last');
    t.same((await log.replay('x-1', true)).map(parseStreamRecord), [end('x-1')]);
    t.same((await log.replay('x-2')).map(parseStreamRecord), [line('x-2', 'other')]);
  });

  t.test('a subscriber gets its execution records live until it stops', async (t) => {
    const log = await make();
    const got: string[] = [];
    const stop = await log.subscribe('x-live', (text) => got.push(text));
    const others: string[] = [];
    t.teardown(await log.subscribe('x-other', (text) => others.push(text)));
    await log.append([line('x-live', 'one'), line('x-other', 'no'), line('x-live', 'two')]);
    await waitFor(
      'two lines',
      async () => got,
      (g) => g.length === 2,
      10_000,
    );
    t.same(got.map(parseStreamRecord), [line('x-live', 'one'), line('x-live', 'two')]);
    stop();
    stop();
    await log.append([line('x-live', 'late'), line('x-other', 'yes')]);
    await waitFor(
      'the other execution',
      async () => others,
      (o) => o.length === 2,
      10_000,
    );
    t.equal(got.length, 2, 'nothing after stop');
  });
}
