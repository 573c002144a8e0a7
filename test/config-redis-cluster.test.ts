/**
 * `server.redis.cluster_nodes`: what the loader accepts and refuses (with file:line), that the
 * logged config hides the seed nodes' passwords, and the client built from it (credentials and
 * TLS from the seed URLs, reads from masters).
 */
import { Cluster, Redis } from 'ioredis';
import t from 'tap';
import { redactConfig } from '../shared/config/redact-config.js';
import { MAX_REDIS_SEEDS } from '../shared/config/redis-topology.js';
import { parseServerConfig } from '../shared/config/server-config.js';
import { createCluster, createRedisFor } from '../store/redis/client.js';

const server = (redis: string) =>
  `server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n  redis {\n${redis}\n  }\n}\n`;

t.test('cluster_nodes: accepted forms', async (t) => {
  const cfg = await parseServerConfig(
    's.hcl',
    server(
      '    cluster_nodes = ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7000"]\n    prefix = "f"',
    ),
    {},
  );
  t.same(cfg.redis.cluster_nodes, ['redis://:pw@10.0.0.1:7000', 'redis://:pw@10.0.0.2:7000']);
  t.equal(cfg.redis.prefix, 'f');
  const plain = await parseServerConfig('s.hcl', server(''), {});
  t.same(plain.redis.cluster_nodes, [], 'default: not a cluster');
  const tls = await parseServerConfig('s.hcl', server('    cluster_nodes = ["rediss://u:p@[::1]:7000"]'), {});
  t.same(tls.redis.cluster_nodes, ['rediss://u:p@[::1]:7000'], 'rediss and IPv6 literals');
});

t.test('cluster_nodes: mistakes are refused with file and line', async (t) => {
  const fails = async (redis: string, pattern: RegExp, what: string, line = 6) => {
    const err = await parseServerConfig('s.hcl', server(redis), {}).catch((e: unknown) => e);
    t.match(String(err), pattern, what);
    t.match(String(err), new RegExp(`s\\.hcl:${line}:`), `${what}: names the line`);
  };
  await fails('    cluster_nodes = ["10.0.0.1:7000"]', /redis:\/\/host:port/, 'no scheme');
  await fails('    cluster_nodes = ["http://10.0.0.1:7000"]', /redis:\/\/host:port/, 'another scheme');
  await fails('    cluster_nodes = ["redis://10.0.0.1"]', /redis:\/\/host:port/, 'no port');
  await fails(
    '    cluster_nodes = ["redis://:a@h1:7000", "redis://:b@h2:7000"]',
    /same scheme.*user and password/,
    'different passwords',
  );
  await fails(
    '    cluster_nodes = ["redis://h1:7000", "rediss://h2:7000"]',
    /same scheme/,
    'TLS on some nodes only',
  );
  await fails(
    '    cluster_nodes = ["redis://h1:7000"]\n    sentinels = ["h:26379"]\n    master_name = "m"',
    /not both/,
    'a cluster with Sentinels',
    7,
  );
  await fails(
    `    cluster_nodes = [${Array.from({ length: MAX_REDIS_SEEDS + 1 }, (_, i) => `"redis://h${i}:7000"`).join(', ')}]`,
    new RegExp(`at most ${MAX_REDIS_SEEDS} seed nodes`),
    'the seed list is bounded',
  );
  const both = await parseServerConfig(
    's.hcl',
    server('    url = "redis://h:6379"\n    cluster_nodes = ["redis://h1:7000"]'),
    {},
  ).catch((e: unknown) => e);
  t.match(String(both), /url or cluster_nodes, not both/, 'url beside cluster_nodes');
});

t.test('the logged config hides the seed nodes passwords', async (t) => {
  const cfg = await parseServerConfig(
    's.hcl',
    server('    cluster_nodes = ["redis://u:s3cret-pw@h1:7000"]'),
    {},
  );
  const shown = JSON.stringify(redactConfig(cfg));
  t.notMatch(shown, /s3cret-pw/);
  t.match(shown, /h1:7000/);
});

t.test('the client: a Cluster from cluster_nodes, one Redis otherwise', async (t) => {
  const cluster = createCluster(
    ['rediss://fluke:p%40ss@10.9.9.9:7000', 'rediss://fluke:p%40ss@10.9.9.8:7001'],
    {
      lazyConnect: true,
    },
  );
  t.teardown(() => cluster.disconnect());
  t.ok(cluster instanceof Cluster);
  t.match(cluster.options, { scaleReads: 'master' });
  t.match(cluster.options.redisOptions, {
    username: 'fluke',
    password: 'p@ss',
    tls: {},
    maxRetriesPerRequest: null,
  });
  const single = createRedisFor({
    url: 'redis://127.0.0.1:1',
    cluster_nodes: [],
    sentinels: [],
    master_name: null,
    sentinel_password: null,
  });
  t.teardown(() => single.disconnect());
  t.ok(single instanceof Redis && !(single instanceof Cluster), 'no cluster_nodes: one Redis');
  const fromConfig = createRedisFor({
    url: 'redis://127.0.0.1:1',
    cluster_nodes: ['redis://127.0.0.1:1'],
    sentinels: [],
    master_name: null,
    sentinel_password: null,
  });
  t.teardown(() => fromConfig.disconnect());
  t.ok(fromConfig instanceof Cluster, 'cluster_nodes: a Cluster');
});
