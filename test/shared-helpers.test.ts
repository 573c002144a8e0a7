/** The small shared helpers every component leans on: liveness intervals, errors, JSON + zod. */
import t from 'tap';
import { z } from 'zod';
import { coerceError, errorMessage } from '../shared/errors.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, liveness } from '../shared/liveness.js';
import { parseJsonWith } from '../shared/parse-json.js';

t.test('liveness: every interval derived from the heartbeat', async (t) => {
  t.same(liveness(10_000), {
    heartbeatMs: 10_000,
    registryTtlMs: 30_000,
    silenceMs: 30_000,
    gatewayGoneMs: 30_000,
    gatewayStaleMs: 35_000,
    registerTimeoutMs: 30_000,
    idleTimeoutSeconds: 30,
    deadlineCheckMs: 30_000,
  });
  const short = liveness(1000);
  t.equal(short.registryTtlMs, 3000, 'three heartbeats');
  t.equal(short.gatewayStaleMs, 8000, 'three heartbeats plus 5 s');
  t.equal(short.registerTimeoutMs, 10_000, 'at least 10 s to register');
  t.equal(short.deadlineCheckMs, 5000, 'deadline checks at least 5 s apart');
  t.equal(short.idleTimeoutSeconds, 3);
  t.equal(liveness(250).idleTimeoutSeconds, 0.75, 'seconds, unrounded (uWS clamps)');
  t.equal(DEFAULT_HEARTBEAT_INTERVAL_MS, 10_000);
});

t.test('errorMessage and coerceError: anything thrown', async (t) => {
  const err = new TypeError('boom');
  t.equal(coerceError(err), err, 'an Error is kept as it is');
  t.equal(errorMessage(err), 'boom');
  t.equal(errorMessage('plain'), 'plain', 'a string is the message');
  t.equal(errorMessage({ code: 7 }), '{"code":7}', 'an object as JSON');
  t.equal(errorMessage(undefined), 'undefined', 'no JSON: String()');
  t.equal(errorMessage(10n), '10', 'JSON.stringify throws on a BigInt: String()');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.equal(errorMessage(cyclic), '[object Object]', 'a cycle does not throw');
  t.equal(coerceError('x').message, 'x');
  t.ok(coerceError(null) instanceof Error);
  t.equal(coerceError(null).message, 'null');
});

t.test('parseJsonWith: the value, or null', async (t) => {
  const schema = z.object({ a: z.number() });
  t.same(parseJsonWith(schema, '{"a":1,"b":2}'), { a: 1 }, 'parsed as the schema outputs it');
  t.equal(parseJsonWith(schema, '{"a":"1"}'), null, 'schema mismatch');
  t.equal(parseJsonWith(schema, '{"a":'), null, 'malformed JSON');
  t.equal(parseJsonWith(schema, null), null, 'not a string');
  t.equal(parseJsonWith(schema, Buffer.from('{"a":1}')), null, 'a Buffer is not text');
  t.equal(parseJsonWith(z.null(), 'null'), null, 'a JSON null reads as null too');
});
