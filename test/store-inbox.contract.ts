/**
 * The gateway inbox contract (store/inbox/inbox.ts), run against the memory twin and the Redis
 * implementation by store-inbox.test.ts. Gateways announce themselves through the registry.
 */
import type { Test } from 'tap';
import type { GatewayInbox } from '../store/inbox/inbox.js';
import type { Registry } from '../store/registry/registry.js';
import { waitFor } from '../testkit/system.js';

export interface InboxWorld {
  inbox: GatewayInbox;
  registry: Pick<Registry, 'announce' | 'retire'>;
}

/** Listens on a gateway's inbox; `got` holds what arrived, in order. */
async function listener(t: Test, inbox: GatewayInbox, gatewayId: string) {
  const got: string[] = [];
  const stop = await inbox.listen(gatewayId, (text) => got.push(text));
  t.teardown(stop);
  return {
    got,
    until: (n: number) =>
      waitFor(
        `${n} texts on ${gatewayId}`,
        async () => got,
        (g) => g.length >= n,
        10_000,
      ),
  };
}

export function inboxContract(t: Test, make: () => Promise<InboxWorld>) {
  t.test('a listener gets what is sent from then on, in order, batches kept together', async (t) => {
    const { inbox } = await make();
    t.equal(await inbox.send('gw-1', 'before'), true, 'accepted with no listener');
    const gw1 = await listener(t, inbox, 'gw-1');
    const gw2 = await listener(t, inbox, 'gw-2');
    t.equal(await inbox.send('gw-1', 'one'), true);
    t.equal(await inbox.send('gw-1', ['two', 'three']), true);
    t.equal(await inbox.send('gw-2', 'other'), true);
    t.equal(await inbox.send('gw-1', 'four'), true);
    t.same(await gw1.until(4), ['one', 'two', 'three', 'four'], 'not what came before it listened');
    t.same(await gw2.until(1), ['other'], 'each gateway reads its own');
  });

  t.test('with aliveSince: only to a gateway that announced itself since then', async (t) => {
    const { inbox, registry } = await make();
    const gw = await listener(t, inbox, 'gw-a');
    const now = Date.now();
    t.equal(await inbox.send('gw-a', 'unknown', now - 1000), false, 'never announced');
    await registry.announce('gw-a', now - 5000);
    t.equal(await inbox.send('gw-a', 'stale', now - 1000), false, 'announced too long ago');
    t.equal(await inbox.send('gw-a', 'no check', null), true, 'without a check: delivered');
    await registry.announce('gw-a', now);
    t.equal(await inbox.send('gw-a', 'alive', now - 1000), true);
    t.equal(await inbox.send('gw-a', 'just', now), true, 'announced exactly then counts');
    await registry.retire('gw-a');
    t.equal(await inbox.send('gw-a', 'retired', now - 1000), false);
    t.same(await gw.until(3), ['no check', 'alive', 'just']);
  });

  t.test('a stopped listener gets nothing more', async (t) => {
    const { inbox } = await make();
    const got: string[] = [];
    const stop = await inbox.listen('gw-s', (text) => got.push(text));
    const other = await listener(t, inbox, 'gw-s');
    await inbox.send('gw-s', 'first');
    await waitFor(
      'first',
      async () => got,
      (g) => g.length === 1,
      10_000,
    );
    await stop();
    await inbox.send('gw-s', 'second');
    await other.until(2);
    t.same(got, ['first']);
  });
}
