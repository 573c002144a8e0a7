/** server.redis: sentinels, master_name, sentinel_password and replica_ack_timeout, each mistake with file:line. */
import t from 'tap';
import { ConfigError, parseServerConfig } from '../shared/config/load.js';
import { redactConfig } from '../shared/config/redact-config.js';
import { MAX_REDIS_SEEDS } from '../shared/config/redis-topology.js';
import { DEFAULT_REPLICA_ACK_TIMEOUT_MS, MAX_REPLICA_ACK_TIMEOUT_MS } from '../shared/config/replica-ack.js';

const withRedis = (body: string) =>
  `server {\n  agent_tokens = ["t"]\n  git { url = "/r" }\n  tls { enabled = false }\n  redis {\n${body}\n  }\n}\n`;

const parse = (body: string, env: Record<string, string> = {}) =>
  parseServerConfig('r.hcl', withRedis(body), env);

async function errorsOf(body: string): Promise<Array<[number, string, string]>> {
  const err = await parse(body).catch((e: unknown) => e);
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError for ${body}`);
  return err.errors.map((e) => [e.line, e.field, e.message]);
}

t.test('sentinels with master_name and sentinel_password', async (t) => {
  const c = await parse(
    '    url = "rediss://fluke:$PW@unused:1/2"\n    sentinels = ["10.0.0.1:26379", "[::1]:26379", "s3.internal:26379"]\n    master_name = "fluke-main"\n    sentinel_password = "$SPW"',
    { PW: 'pw', SPW: 'spw' },
  );
  t.same(c.redis.sentinels, ['10.0.0.1:26379', '[::1]:26379', 's3.internal:26379']);
  t.equal(c.redis.master_name, 'fluke-main');
  t.equal(c.redis.sentinel_password, 'spw', 'from the environment');
  t.equal(c.redis.replica_ack_timeout_ms, DEFAULT_REPLICA_ACK_TIMEOUT_MS);
  const red = redactConfig(c);
  t.not(red.redis.sentinel_password, 'spw', 'redacted');
  t.notMatch(red.redis.url, /pw@/, 'the url password redacted');
});

t.test('a single Redis: no Sentinels, no master name', async (t) => {
  const c = await parse('    url = "redis://127.0.0.1:6379"');
  t.same(c.redis.sentinels, []);
  t.equal(c.redis.master_name, null);
  t.equal(c.redis.sentinel_password, null);
});

t.test('sentinel mistakes name the line', async (t) => {
  t.same(await errorsOf('    sentinels = ["10.0.0.1:26379"]'), [
    [6, 'server.redis.sentinels', 'needs master_name: the name the Sentinels monitor (e.g. "mymaster")'],
  ]);
  t.match(await errorsOf('    sentinels = ["10.0.0.1"]\n    master_name = "m"'), [
    [6, 'server.redis.sentinels', /each Sentinel must be host:port, got "10.0.0.1"/],
  ]);
  t.match(await errorsOf('    sentinels = ["h:70000"]\n    master_name = "m"'), [
    [6, 'server.redis.sentinels', /host:port/],
  ]);
  t.match(await errorsOf('    master_name = "m"'), [
    [6, 'server.redis.master_name', /only means something with sentinels/],
  ]);
  t.match(await errorsOf('    sentinel_password = "x"'), [
    [6, 'server.redis.sentinel_password', /only means something with sentinels/],
  ]);
  t.match(await errorsOf('    sentinels = ["h:1"]\n    master_name = "has space"'), [
    [7, 'server.redis.master_name', /letters, digits/],
  ]);
  t.match(
    await errorsOf('    cluster_nodes = ["redis://h:1"]\n    sentinels = ["h:2"]\n    master_name = "m"'),
    [[7, 'server.redis.sentinels', /not both/]],
  );
  const many = Array.from({ length: MAX_REDIS_SEEDS + 1 }, (_, i) => `"h${i}:1"`).join(', ');
  t.match(await errorsOf(`    sentinels = [${many}]\n    master_name = "m"`), [
    [6, 'server.redis.sentinels', `at most ${MAX_REDIS_SEEDS} Sentinels`],
  ]);
  t.match(await errorsOf('    sentinels = "h:1"\n    master_name = "m"'), [
    [6, 'server.redis.sentinels', /list/],
  ]);
});

t.test('replica_ack_timeout: default, off, bounds', async (t) => {
  t.equal((await parse('    replica_ack_timeout = "250ms"')).redis.replica_ack_timeout_ms, 250);
  t.equal(
    (await parse('    replica_ack_timeout = "0s"')).redis.replica_ack_timeout_ms,
    0,
    '"0s" turns it off',
  );
  t.equal(
    (await parse(`    replica_ack_timeout = "${MAX_REPLICA_ACK_TIMEOUT_MS / 1000}s"`)).redis
      .replica_ack_timeout_ms,
    MAX_REPLICA_ACK_TIMEOUT_MS,
  );
  t.match(await errorsOf('    replica_ack_timeout = "6s"'), [
    [6, 'server.redis.replica_ack_timeout', 'must be from "0s" (off) to "5s", got "6s"'],
  ]);
  t.match(await errorsOf('    replica_ack_timeout = "soon"'), [[6, 'server.redis.replica_ack_timeout', /./]]);
  t.match(await errorsOf('    replica_ack_timeout = "1.5ms"'), [
    [6, 'server.redis.replica_ack_timeout', /whole/],
  ]);
});
