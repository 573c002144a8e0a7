import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type Agent, createAgent } from '../agent/agent.js';
import type { ExecResult, Executors } from '../agent/executors/executor.js';
import type { AgentConfig } from '../shared/config/types.js';
import type { AgentMessage, RegisterMessage, TaskResultMessage } from '../shared/protocol.js';
import { shell, silentLogger, task, tempDir } from './helpers/agent-harness.js';
import { type FakeGateway, startFakeGateway } from './helpers/fake-gateway.js';

function config(url: string, token = 'test-token'): AgentConfig {
  return {
    source: '/dev/null',
    server_url: url,
    token,
    credential_file: '/nonexistent/fluke-agent-test.credential',
    name: 'web-01',
    labels: { role: 'web' },
    tls: { ca_file: null, insecure_skip_verify: false },
    execution: { default_shell: '/bin/bash', command_timeout_ms: 30_000 },
    log: { level: 'error', format: 'json' },
  };
}

function startAgent(
  t: Parameters<typeof tempDir>[0],
  url: string,
  extra: {
    token?: string;
    capMs?: number;
    resendAfterMs?: number;
    executors?: Executors;
    batchWindowMs?: number;
  } = {},
): Agent {
  const agent = createAgent({
    config: config(url, extra.token),
    logger: silentLogger,
    version: '9.9.9-test',
    connection: {
      backoffBaseMs: 20,
      backoffCapMs: extra.capMs ?? 200,
      random: () => 0.5,
      ...(extra.batchWindowMs !== undefined ? { batchWindowMs: extra.batchWindowMs } : {}),
    },
    drainTimeoutMs: 500,
    ...(extra.resendAfterMs ? { resendAfterMs: extra.resendAfterMs } : {}),
    ...(extra.executors ? { executors: extra.executors } : {}),
  });
  agent.start();
  t.teardown(() => agent.stop());
  return agent;
}

async function gateway(
  t: Parameters<typeof tempDir>[0],
  opts: Parameters<typeof startFakeGateway>[0] = {},
): Promise<FakeGateway> {
  const gw = await startFakeGateway(opts);
  t.teardown(() => gw.close());
  return gw;
}

/** Executors whose checks pass at once: results come as fast as the runner can emit them. */
const satisfied = async (): Promise<ExecResult> => ({
  exitCode: 0,
  output: '',
  timedOut: false,
  error: null,
});
const instant = { check: satisfied, apply: satisfied };
const instantExecutors = { shell: instant, systemd: instant, mise: instant } as Executors;

const isType =
  <K extends AgentMessage['type']>(type: K) =>
  (m: AgentMessage): m is Extract<AgentMessage, { type: K }> =>
    m.type === type;

t.test('register, heartbeat, run, results and acks', async (t) => {
  const gw = await gateway(t, { heartbeatIntervalMs: 50 });
  const agent = startAgent(t, gw.url);
  const register = (await gw.waitFor(isType('register'))) as RegisterMessage;
  t.match(register, {
    v: 1,
    name: 'web-01',
    labels: { role: 'web' },
    agent_version: '9.9.9-test',
    running: [],
  });
  t.ok(register.executors.includes('shell'));
  t.same(register.features, ['result_retry', 'identity'], 'it says it takes result_retry and enrolls');
  t.equal(gw.authorizations[0], 'Bearer test-token');
  await gw.waitFor(isType('heartbeat'));

  const run = task('hello', [shell('greet', 'echo checking; false', 'echo applying')], 'check');
  gw.send({ type: 'run', instruction_id: 'i-1', revision: 'abc', trigger: 'manual', tasks: [run] });
  t.match(await gw.waitFor(isType('instruction_receipt')), { instruction_id: 'i-1', accepted: true });
  const result = (await gw.waitFor(isType('task_result'))) as TaskResultMessage;
  t.equal(result.outcome, 'drifted');
  // Live output is best effort and batched: it may land just after the result.
  await gw.waitFor((m) => m.type === 'output' && m.line === 'checking');
  t.pass('live output reached the gateway');
  t.same(
    gw.received.map((r) => r.message.type).filter((ty) => ty.endsWith('_result')),
    ['task_result'],
    'mode check: no apply follows the check, so the task result says it all',
  );
  await agent.runner.idle();
  // The fake acks each result as it arrives; the last ack may still be in flight: the outbox
  // empties once it lands (bounded wait, no fixed sleep).
  const deadline = Date.now() + 5000;
  while (agent.outbox.size > 0 && Date.now() < deadline)
    await gw.waitFor(isType('heartbeat'), gw.received.length);
  t.equal(agent.outbox.size, 0, 'acked results are forgotten');

  gw.send({ type: 'run', instruction_id: 'i-1', revision: 'abc', trigger: 'manual', tasks: [run] });
  t.match(await gw.waitFor((m) => m.type === 'instruction_receipt' && !m.accepted), { reason: /duplicate/ });
});

t.test('unacked results are re-sent, in order, to the next gateway; running ids re-registered', async (t) => {
  const dir = tempDir(t);
  const fifo = join(dir, 'go');
  execFileSync('mkfifo', [fifo]);
  const first = await startFakeGateway({ autoAck: false });
  const agent = startAgent(t, first.url);
  await first.waitFor(isType('register'));

  const run = task('slow', [
    shell('drifts', `test -f ${dir}/m`, `touch ${dir}/m`),
    shell('quick', 'true', 'true'),
    shell('waits', `cat ${fifo}`, 'true'),
  ]);
  first.send({ type: 'run', instruction_id: 'i-long', revision: 'abc', trigger: 'commit', tasks: [run] });
  // `drifts` sends a check_result (an apply follows), then its step_result as `quick` starts;
  // `quick` is satisfied (no check_result), its step_result leaves as `waits` starts.
  const check = await first.waitFor(isType('check_result'));
  await first.waitFor((m) => m.type === 'step_result' && m.result.step === 'quick');
  t.equal(agent.outbox.size, 3, 'three results unacked at the kill');
  // kill -9 the gateway while the last step still runs.
  await first.kill();

  const second = await gateway(t, { port: first.port, gatewayId: 'gw-2' });
  const reregister = (await second.waitFor(isType('register'))) as RegisterMessage;
  t.same(reregister.running, ['i-long'], 'the running instruction is declared on re-registration');
  const firstResend = await second.waitFor((m) => 'result_id' in m);
  t.equal(
    'result_id' in firstResend && firstResend.result_id,
    check.result_id,
    'the oldest unacked result comes first',
  );

  writeFileSync(fifo, 'go\n');
  const final = (await second.waitFor(isType('task_result'))) as TaskResultMessage;
  t.equal(final.outcome, 'applied', 'the first step was applied');
  await agent.runner.idle();
  await second.waitFor((m) => m.type === 'task_result');
  const ids = second.received.flatMap((r) => ('result_id' in r.message ? [r.message.result_id] : []));
  t.equal(new Set(ids).size, ids.length, 'each result reached the second gateway exactly once');
  t.same(
    second.received.map((r) => r.message.type).filter((ty) => ty.endsWith('_result')),
    ['check_result', 'step_result', 'step_result', 'task_result'],
    'in the order they were produced',
  );
});

t.test('a result the gateway never acks is sent again on the same connection', async (t) => {
  // A gateway whose enqueue failed (Redis slow or away, backlog full) does not ack: the agent must
  // not wait for a reconnect that may never come.
  const gw = await gateway(t, { autoAck: false });
  const agent = startAgent(t, gw.url, { resendAfterMs: 300 });
  await gw.waitFor(isType('register'));
  const run = task('quick', [shell('ok', 'true', 'true')]);
  gw.send({ type: 'run', instruction_id: 'i-resend', revision: 'abc', trigger: 'manual', tasks: [run] });
  const first = (await gw.waitFor(isType('task_result'))) as TaskResultMessage;
  const at = gw.received.length;
  const again = (await gw.waitFor(
    (m) => m.type === 'task_result' && m.result_id === first.result_id,
    at,
  )) as TaskResultMessage;
  t.same(again, first, 'the same result, unchanged');
  t.equal(gw.received.filter((r) => r.message.type === 'register').length, 1, 'without reconnecting');
  const ids = agent.outbox.pending().map((r) => r.result_id);
  gw.ack(ids);
  const deadline = Date.now() + 5000;
  while (agent.outbox.size > 0 && Date.now() < deadline)
    await gw.waitFor(isType('heartbeat'), gw.received.length);
  t.equal(agent.outbox.size, 0, 'acked: nothing left to re-send');
});

t.test('a refused registration is retried slowly, not hammered', async (t) => {
  const gw = await gateway(t, { refuse: 'labels not allowed for this token' });
  startAgent(t, gw.url, { capMs: 400 });
  await gw.waitForAttempts(2);
  const gap = (gw.attempts[1] ?? 0) - (gw.attempts[0] ?? 0);
  // random = 0.5 → refusal delay = 200 + 100 = 300 ms (a plain retry would be 10 ms).
  t.ok(gap >= 280, `second attempt after ${gap} ms`);
});

t.test('a wrong token (401 before the upgrade) is also retried slowly', async (t) => {
  const gw = await gateway(t);
  startAgent(t, gw.url, { token: 'wrong', capMs: 400 });
  await gw.waitForAttempts(2);
  t.equal(gw.connections, 0);
  t.equal(gw.authorizations[0], 'Bearer wrong');
  t.ok((gw.attempts[1] ?? 0) - (gw.attempts[0] ?? 0) >= 280);
});

t.test('going away (1001): reconnects and registers again', async (t) => {
  const gw = await gateway(t);
  startAgent(t, gw.url, { capMs: 10_000 });
  await gw.waitFor(isType('register'));
  gw.closeAgent(1001, 'draining');
  const again = await gw.waitFor(isType('register'), 1);
  t.ok(again);
  t.equal(gw.connections, 2);
  t.ok((gw.attempts[1] ?? 0) - (gw.attempts[0] ?? 0) < 5000);
});

t.test('a malformed frame from the gateway: the agent closes with 4400 and reconnects', async (t) => {
  const gw = await gateway(t);
  startAgent(t, gw.url);
  await gw.waitFor(isType('register'));
  gw.sendRaw('{"type":"run","instruction_id":');
  await gw.waitForClose(1);
  t.equal(gw.closeCodes[0], 4400);
  await gw.waitFor(isType('register'), 1);
  gw.sendRaw(JSON.stringify({ type: 'run', instruction_id: 'x' }));
  await gw.waitForClose(2);
  t.equal(gw.closeCodes[1], 4400, 'schema failures too');
});

t.test('wss://: verified with ca_file, refused without it, allowed by insecure_skip_verify', async (t) => {
  const dir = tempDir(t);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=fluke-test-ca',
  );
  ssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.pem',
    '-days',
    '1',
    '-extfile',
    'ext',
  );
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const gw = await gateway(t, { tls: { cert: read('srv.pem'), key: read('srv.key') } });
  t.match(gw.url, /^wss:/);

  const withCa = (tls: AgentConfig['tls']) => {
    const agent = createAgent({
      config: { ...config(gw.url), tls },
      logger: silentLogger,
      version: 'test',
      connection: { backoffBaseMs: 20, backoffCapMs: 200, random: () => 0.5 },
    });
    agent.start();
    t.teardown(() => agent.stop());
    return agent;
  };

  // No CA: the system store does not know our CA, so the handshake fails before any upgrade.
  const untrusting = withCa({ ca_file: null, insecure_skip_verify: false });
  await gw.waitForTlsClientErrors(2);
  t.equal(gw.attempts.length, 0, 'no upgrade request got through an unverified TLS session');
  await untrusting.stop();

  withCa({ ca_file: join(dir, 'ca.pem'), insecure_skip_verify: false });
  await gw.waitFor(isType('register'));
  withCa({ ca_file: null, insecure_skip_verify: true });
  await gw.waitFor(isType('register'), 1);
  t.equal(gw.connections, 2);
});

t.test('a receipt and results emitted together leave as one results frame', async (t) => {
  const gw = await gateway(t);
  const agent = startAgent(t, gw.url, { executors: instantExecutors });
  await gw.waitFor(isType('register'));
  const tasks = [1, 2, 3].map((i) => task(`t${i}`, [shell('a', 'true', 'true'), shell('b', 'true', 'true')]));
  gw.send({ type: 'run', instruction_id: 'i-batch', revision: 'abc', trigger: 'drift_check', tasks });
  await gw.waitFor((m) => m.type === 'task_result' && m.task === 't3');
  const receipt = gw.received.find((r) => r.message.type === 'instruction_receipt');
  const frame = gw.frames[receipt?.frame ?? -1];
  // 1 receipt + 3 tasks × (step_result of `a` + task_result): satisfied checks send no check_result.
  t.match(frame, { type: 'results', count: 1 + 3 * 2 }, 'the receipt and all 6 results in one frame');
  t.same(
    gw.frames.filter((f) => f.type !== 'heartbeat').map((f) => f.type),
    ['register', 'results'],
    'no other frame carried them',
  );
  const types = gw.received.filter((r) => r.frame === receipt?.frame).map((r) => r.message.type);
  t.same(
    types.slice(0, 5),
    ['instruction_receipt', 'step_result', 'task_result', 'step_result', 'task_result'],
    'in the order they were produced',
  );
  // The fake acks the whole frame in one result_ack.
  await agent.runner.idle();
  const deadline = Date.now() + 5000;
  while (agent.outbox.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(agent.outbox.size, 0, 'every result acked');
});

t.test('a batch lost to a socket close is re-sent, whole, after reconnecting', async (t) => {
  const gw = await gateway(t);
  // A long window, so the close surely comes while the batch waits.
  const agent = startAgent(t, gw.url, { executors: instantExecutors, batchWindowMs: 60_000 });
  await gw.waitFor(isType('register'));
  const run = task('lost', [shell('a', 'true', 'true'), shell('b', 'true', 'true')]);
  gw.send({ type: 'run', instruction_id: 'i-lost', revision: 'abc', trigger: 'manual', tasks: [run] });
  const deadline = Date.now() + 5000;
  while (agent.outbox.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await agent.runner.idle();
  // The step_result of `a` and the task_result (satisfied checks send no check_result).
  t.equal(agent.outbox.size, 2, 'two results waiting in the outbox (and in the batch)');
  t.same(
    gw.frames.map((f) => f.type),
    ['register'],
    'nothing sent yet',
  );
  const pending = agent.outbox.pending().map((r) => r.result_id);
  gw.closeAgent(1001, 'draining');
  await gw.waitFor(isType('register'), 1);
  // Re-sent at once after registration (not after the window), as one frame.
  const last = await gw.waitFor((m) => 'result_id' in m && m.result_id === pending.at(-1));
  t.ok(last);
  const resent = gw.received.filter((r) => 'result_id' in r.message);
  t.same(
    resent.map((r) => ('result_id' in r.message ? r.message.result_id : '')),
    pending,
    'every result exactly once, oldest first',
  );
  t.ok(
    resent.every((r) => r.conn === 2),
    'all on the new connection: the dropped batch never went out on the old one',
  );
  t.equal(new Set(resent.map((r) => r.frame)).size, 1, 'in one frame');
  t.equal(gw.frames[resent[0]?.frame ?? -1]?.type, 'results');
  while (agent.outbox.size > 0 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 10));
  t.equal(agent.outbox.size, 0, 'acked after the re-send');
});

t.test('result_retry: the named results are re-sent after the delay, on the same connection', async (t) => {
  // A gateway whose backlog is full: it never acks, and asks for some results again.
  const gw = await gateway(t, { autoAck: false });
  // resendAfterMs far away, so only the result_retry can bring anything back in this test.
  const agent = startAgent(t, gw.url, { executors: instantExecutors, resendAfterMs: 60_000 });
  await gw.waitFor(isType('register'));
  const run = task('retried', [
    shell('a', 'true', 'true'),
    shell('b', 'true', 'true'),
    shell('c', 'true', 'true'),
  ]);
  gw.send({ type: 'run', instruction_id: 'i-retry', revision: 'abc', trigger: 'manual', tasks: [run] });
  await gw.waitFor(isType('task_result'));
  await agent.runner.idle();
  // Whatever results the steps produced, all unacknowledged: name the oldest and the newest.
  const sent = agent.outbox.pending().map((r) => r.result_id);
  t.ok(sent.length >= 3, `${sent.length} results waiting for an ack`);
  const oldest = sent[0];
  const newest = sent.at(-1);
  const unnamed = sent.slice(1, -1);
  const at = gw.received.length;
  const askedAt = Date.now();
  gw.send({ type: 'result_retry', result_ids: [newest!, 'unknown-id', oldest!], retry_after_ms: 200 });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('not re-sent within 10 s')), 10_000).unref(),
  );
  await Promise.race([gw.waitFor((m) => 'result_id' in m && m.result_id === newest, at), timeout]);
  const waited = Date.now() - askedAt;
  t.ok(waited >= 200, `re-sent after the delay (${waited} ms)`);
  const resent = () =>
    gw.received.slice(at).flatMap((r) => ('result_id' in r.message ? [r.message.result_id] : []));
  t.same(resent(), [oldest, newest], 'only the named results, oldest first, the unknown id ignored');
  t.equal(
    new Set(
      gw.received
        .slice(at)
        .filter((r) => 'result_id' in r.message)
        .map((r) => r.frame),
    ).size,
    1,
    'together, in one frame',
  );
  t.equal(gw.received.filter((r) => r.message.type === 'register').length, 1, 'without reconnecting');
  t.notOk(
    unnamed.some((id) => resent().includes(id)),
    'the results not named wait for their own time',
  );

  // Once re-sent, nothing comes again before resendAfterMs (a heartbeat interval is 10 s here).
  await new Promise((r) => setTimeout(r, 600));
  t.same(resent(), [oldest, newest], 'not re-sent twice');
  gw.ack(sent);
  const deadline = Date.now() + 5000;
  while (agent.outbox.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(agent.outbox.size, 0, 'acked: forgotten');
});
