/** Pure decisions of the gateway, tested with literals: tokens, scopes, globs, parsing, job ids. */
import t from 'tap';
import { clampIdleTimeout } from '../gateway/uws.js';
import { bearerToken, checkScope, createTokenVerifier, globMatch, type TokenGrant } from '../shared/auth.js';
import { parseListenAddress } from '../shared/config/listen-address.js';
import { decodeInboxRecord, encodeInboxRecord } from '../shared/inbox-record.js';
import { connectChecksJob, resultJob } from '../shared/jobs/builders.js';
import { jobId } from '../shared/jobs/options.js';
import { opaqueId } from '../shared/redact.js';
import { decodeRegistryEntry, encodeRegistryEntry, type RegistryEntry } from '../shared/registry-entry.js';

const verify = createTokenVerifier({
  agent_tokens: ['plain-token', ''],
  scoped_agent_tokens: [
    {
      id: 'stg',
      token: 'stg-token',
      allowed_labels: { env: ['staging', 'qa'] },
      name_pattern: 'stg-*',
      require_labels: true,
    },
    { id: 'any', token: 'any-token', allowed_labels: {}, name_pattern: null, require_labels: true },
  ],
});

t.test('token verification', async (t) => {
  t.same(verify('plain-token'), { kind: 'unscoped' });
  t.match(verify('stg-token'), { kind: 'scoped', id: 'stg', name_pattern: 'stg-*' });
  t.match(verify('any-token'), { kind: 'scoped', id: 'any' });
  t.equal(verify('plain-token '), null);
  t.equal(verify('plain-toke'), null);
  t.equal(verify('PLAIN-TOKEN'), null);
  t.equal(verify(''), null, 'an empty configured token never matches');
  t.equal(verify(null), null);
  t.equal(createTokenVerifier({ agent_tokens: [], scoped_agent_tokens: [] })('x'), null);
});

t.test('bearer header parsing', async (t) => {
  t.equal(bearerToken('Bearer abc'), 'abc');
  t.equal(bearerToken('bearer  abc '), 'abc');
  t.equal(bearerToken('Basic abc'), null);
  t.equal(bearerToken('Bearer'), null);
  t.equal(bearerToken('Bearer a b'), null);
  t.equal(bearerToken(''), null);
  t.equal(bearerToken(undefined), null);
});

t.test('glob over agent names', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['stg-*', 'stg-web-01', true],
    ['stg-*', 'stg-', true],
    ['stg-*', 'prod-stg-1', false],
    ['*-01', 'web-01', true],
    ['web-??', 'web-01', true],
    ['web-??', 'web-1', false],
    ['*', '', true],
    ['', '', true],
    ['', 'a', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['web.[0-9]', 'web.[0-9]', true],
    ['web.[0-9]', 'web.1', false],
    ['**', 'anything', true],
  ];
  for (const [pattern, name, expected] of cases)
    t.equal(globMatch(pattern, name), expected, `${pattern} ~ ${name}`);
});

t.test('scope checks', async (t) => {
  const stg = verify('stg-token') as TokenGrant;
  t.same(checkScope({ kind: 'unscoped' }, 'prod-1', { env: 'production' }), { ok: true });
  t.same(checkScope(stg, 'stg-1', { env: 'staging', role: 'web' }), { ok: true });
  t.same(checkScope(stg, 'stg-1', { env: 'qa' }), { ok: true });
  t.same(
    checkScope(stg, 'stg-1', {}),
    { ok: false, reason: 'token "stg" requires label env (allowed: staging, qa)' },
    'a scoped key is required: leaving it out would match selectors of every value',
  );
  t.same(
    checkScope(stg, 'stg-1', { role: 'web' }),
    { ok: false, reason: 'token "stg" requires label env (allowed: staging, qa)' },
    'other labels do not stand in for the required one',
  );
  const lenient: TokenGrant = { ...stg, require_labels: false } as TokenGrant;
  t.same(checkScope(lenient, 'stg-1', {}), { ok: true }, 'require_labels = false: omitting is allowed');
  t.same(
    checkScope(lenient, 'stg-1', { env: 'production' }).ok,
    false,
    'require_labels = false still restricts the values',
  );
  t.same(checkScope(stg, 'stg-1', { env: 'production' }), {
    ok: false,
    reason: 'token "stg" does not allow label env=production (allowed: staging, qa)',
  });
  t.same(checkScope(stg, 'web-1', { env: 'staging' }), {
    ok: false,
    reason: 'token "stg" does not allow agent name "web-1" (allowed: stg-*)',
  });
  const none: TokenGrant = {
    kind: 'scoped',
    id: 'n',
    allowed_labels: { env: [] },
    name_pattern: null,
    require_labels: true,
  };
  t.match(checkScope(none, 'x', { env: 'a' }), { ok: false, reason: /allowed: none/ });
});

t.test('listen addresses', async (t) => {
  t.same(parseListenAddress(':7070'), { host: '', port: 7070 });
  t.same(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListenAddress('[::1]:7070'), { host: '::1', port: 7070 });
  t.same(parseListenAddress('gw.local:80'), { host: 'gw.local', port: 80 });
  t.throws(() => parseListenAddress('7070'));
  t.throws(() => parseListenAddress(':70700'));
  t.throws(() => parseListenAddress('a:b'));
});

t.test('registry entry round trip', async (t) => {
  const entry: RegistryEntry = {
    name: 'web-01',
    labels: { role: 'web' },
    gateway_id: 'gw',
    session_id: 's1',
    connected_at: 1,
    last_seen: 2,
    agent_version: '0.1.0',
    executors: ['shell', 'mise'],
    running: ['i-1'],
  };
  t.same(decodeRegistryEntry(encodeRegistryEntry(entry)), entry);
  t.equal(decodeRegistryEntry({}), null, 'missing');
  t.equal(decodeRegistryEntry({ ...encodeRegistryEntry(entry), labels: '{' }), null, 'corrupt');
  const { session_id: _, ...partial } = encodeRegistryEntry(entry);
  t.equal(decodeRegistryEntry(partial), null, 'partial');
});

t.test('gateway inbox records', async (t) => {
  t.equal(decodeInboxRecord('nope'), null);
  const env = '{"kind":"instruction","agent":"a","type":"run","instruction_id":"i"}';
  t.equal(decodeInboxRecord(`${env.replace('"run"', '"hello"')}\n{}`), null, 'bad type');
  t.equal(decodeInboxRecord(`${env.replace(',"instruction_id":"i"', '')}\n{}`), null, 'no id');
  t.equal(decodeInboxRecord(env), null, 'no message');
  t.equal(
    decodeInboxRecord('{"kind":"kick","agent":"a","session_id":"s","by_gateway":"g"}\n{}'),
    null,
    'a kick has no message',
  );
  t.match(decodeInboxRecord('{"kind":"kick","agent":"a","session_id":"s","by_gateway":"g"}'), {
    kind: 'kick',
  });
  const cancel = { type: 'cancel', instruction_id: 'i', execution_id: null, reason: 'r' } as const;
  const text = encodeInboxRecord({ kind: 'instruction', agent: 'a', session_id: null, message: cancel });
  const decoded = decodeInboxRecord(text);
  t.same(decoded, {
    kind: 'instruction',
    agent: 'a',
    session_id: null,
    type: 'cancel',
    instruction_id: 'i',
    message_json: JSON.stringify(cancel),
  });
  t.same(decoded?.kind === 'instruction' && JSON.parse(decoded.message_json), cancel, 'forwarded as encoded');
});

t.test('job ids and specs', async (t) => {
  t.equal(jobId('r', 'a:b c'), 'r~a_b_c');
  t.equal(jobId('r', '123'), 'r~123', 'never a plain integer');
  const spec = resultJob({
    kind: 'result',
    agent: 'a',
    session_id: 's',
    gateway_id: 'g',
    received_at: 't',
    message: { type: 'instruction_receipt', instruction_id: 'i:1', accepted: false, reason: 'busy' },
  });
  t.equal(spec.opts.jobId, `receipt~${opaqueId('i:1')}`, 'the instruction id only as a digest');
  const connect = connectChecksJob(['web:01', 'web:02']);
  t.equal(connect.name, 'agents');
  t.same(connect.data, { agents: ['web:01', 'web:02'], trigger: 'connect', run_id: null, tasks: null });
});

t.test('uWS idle timeout bounds', async (t) => {
  t.equal(clampIdleTimeout(0.6), 8);
  t.equal(clampIdleTimeout(30), 30);
  t.equal(clampIdleTimeout(5000), 960);
});
