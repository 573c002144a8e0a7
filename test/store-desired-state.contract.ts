/**
 * The desired-state store contract (store/desired-state/state-store.ts), run against the memory
 * twin and the Redis implementation by store-desired-state.test.ts.
 */
import type { Test } from 'tap';
import type { DesiredState } from '../shared/types.js';
import type { StateStore } from '../store/desired-state/state-store.js';

const T0 = Date.parse('2025-03-13T14:22:01.000Z');
export const at = (s: number) => new Date(T0 + s * 1000);

export function desired(...names: string[]): DesiredState {
  return {
    tasks: names.map((name) => ({
      name,
      description: null,
      selector: { match_labels: { role: 'web' }, match_expressions: [] },
      drift: null,
      steps: [
        {
          type: 'shell',
          name: 'a',
          check: 'true',
          command: 'true',
          working_dir: null,
          run_as: null,
          env: {},
          on_failure: 'abort',
        },
      ],
    })),
  };
}

export function stateStoreContract(t: Test, make: () => StateStore) {
  t.test('an empty store: default status, no current state', async (t) => {
    const store = make();
    t.same(await store.status(), {
      revision: null,
      revision_at: null,
      last_poll_at: null,
      last_seen_revision: null,
      last_error: null,
      task_count: 0,
    });
    t.equal(await store.current(), null);
  });

  t.test('saveGood makes a revision current', async (t) => {
    const store = make();
    await store.saveGood('aaa', desired('one', 'two'), at(1));
    t.same(await store.current(), { revision: 'aaa', state: desired('one', 'two') });
    t.same(await store.status(), {
      revision: 'aaa',
      revision_at: at(1).toISOString(),
      last_poll_at: at(1).toISOString(),
      last_seen_revision: 'aaa',
      last_error: null,
      task_count: 2,
    });
    await store.saveGood('bbb', desired('three'), at(2));
    t.same(await store.current(), { revision: 'bbb', state: desired('three') });
    t.equal((await store.status()).task_count, 1);
  });

  t.test('recordError keeps the good revision; a good commit clears the error', async (t) => {
    const store = make();
    await store.saveGood('aaa', desired('one'), at(1));
    const diagnostics = [{ file: 'web.fluke.hcl', line: 5, column: 3, message: 'unknown attribute "owner"' }];
    await store.recordError('bad', '1 error(s)', diagnostics, at(2));
    let status = await store.status();
    t.same(status, {
      revision: 'aaa',
      revision_at: at(1).toISOString(),
      last_poll_at: at(2).toISOString(),
      last_seen_revision: 'bad',
      last_error: { revision: 'bad', message: '1 error(s)', diagnostics, at: at(2).toISOString() },
      task_count: 1,
    });
    t.equal((await store.current())?.revision, 'aaa');
    await store.recordPoll('bad', at(3));
    status = await store.status();
    t.equal(status.last_error?.revision, 'bad', 'seeing the bad commit again keeps the error');
    t.equal(status.last_poll_at, at(3).toISOString());
    await store.saveGood('ccc', desired('one'), at(4));
    t.equal((await store.status()).last_error, null);
  });

  t.test('recordPoll clears the error when the good revision is seen again', async (t) => {
    const store = make();
    await store.saveGood('aaa', desired('one'), at(1));
    await store.recordError(null, 'git fetch failed: unreachable', [], at(2));
    t.match(await store.status(), {
      revision: 'aaa',
      last_seen_revision: null,
      last_error: { revision: null },
    });
    await store.recordPoll('aaa', at(3));
    t.match(await store.status(), {
      revision: 'aaa',
      last_seen_revision: 'aaa',
      last_error: null,
      last_poll_at: at(3).toISOString(),
      revision_at: at(1).toISOString(),
    });
  });

  t.test('diagnostics are capped', async (t) => {
    const store = make();
    const many = Array.from({ length: 150 }, (_, i) => ({ file: 'a.fluke.hcl', line: i + 1, message: 'x' }));
    await store.recordError('bad', '150 error(s)', many, at(1));
    t.equal((await store.status()).last_error?.diagnostics.length, 100);
  });
}
