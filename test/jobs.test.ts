/**
 * The job contract (shared/jobs/): every builder's payload passes its consumer's schema, ids are
 * BullMQ-safe, and garbage payloads are refused as InvalidJobError (which the workers turn into
 * UnrecoverableError: a real worker on a real Redis below).
 */
import pino from 'pino';
import t from 'tap';
import { buildAlert } from '../shared/alerts.js';
import {
  agentJob,
  agentsJob,
  alertJob,
  connectChecksJob,
  deadlineJob,
  deadlinesJob,
  driftTickJob,
  fanoutJob,
  pollNowJob,
  pushPollJob,
  resultJob,
  resultsJob,
  scheduledPollJob,
  undeliverableJob,
} from '../shared/jobs/builders.js';
import { JOB_NAMES, jobId, QUEUE_NAMES } from '../shared/jobs/options.js';
import {
  AlertJob,
  DeadlineJob,
  DeadlinesJob,
  DriftTickJob,
  FanoutJob,
  InvalidJobError,
  PollJob,
  parseJob,
  ReconcileAgentJob,
  ReconcileAgentsJob,
  ResultJob,
} from '../shared/jobs/payloads.js';
import { Keys } from '../shared/keys.js';
import { opaqueId } from '../shared/redact.js';
import { addJob, openQueue } from '../store/queues/queues.js';
import { createWorker } from '../store/queues/workers.js';
import { createRedis } from '../store/redis/client.js';
import { startRedis } from '../testkit/redis.js';
import { waitFor } from '../testkit/system.js';

const receipt = { type: 'instruction_receipt', instruction_id: 'i:1', accepted: true, reason: null } as const;
const alert = buildAlert({
  event: 'drift_detected',
  at: 0,
  agent: { name: 'web-01', labels: { role: 'web' } },
  task: 'nginx',
  policy: 'alert_only',
  remediation_status: 'pending_manual',
  revision: 'abc',
  drifted_steps: ['conf'],
  episode_id: 'e1',
});

t.test('every builder produces a payload its schema accepts', async (t) => {
  const cases: Array<[{ name: string; data: unknown }, { safeParse(d: unknown): { success: boolean } }]> = [
    [
      resultJob({
        kind: 'result',
        agent: 'a',
        session_id: 's',
        gateway_id: 'g',
        received_at: 't',
        message: receipt,
      }),
      ResultJob,
    ],
    [
      resultsJob({
        kind: 'results',
        gateway_id: 'g',
        items: [{ agent: 'a', session_id: 's', received_at: 't', message: receipt }],
      }),
      ResultJob,
    ],
    [undeliverableJob({ kind: 'undeliverable', agent: 'a', instruction_id: 'i', reason: 'gone' }), ResultJob],
    [connectChecksJob(['web-01', 'web-02']), ReconcileAgentsJob],
    [
      agentJob({ agent: 'a', trigger: 'manual', run_id: 'r', tasks: ['t'], retry: 2 }, 2000),
      ReconcileAgentJob,
    ],
    [agentsJob({ agents: ['a', 'b'], trigger: 'commit', run_id: null, tasks: null }, 0), ReconcileAgentsJob],
    [fanoutJob({ trigger: 'commit', run_id: null, task: null, agent: null }), FanoutJob],
    [deadlineJob({ instruction_id: 'i', misses: 1 }, 5000), DeadlineJob],
    [deadlinesJob([{ instruction_id: 'i', misses: 0 }], 5000), DeadlinesJob],
    [scheduledPollJob(), PollJob],
    [pollNowJob(), PollJob],
    [pushPollJob('f'.repeat(40)), PollJob],
    [driftTickJob(), DriftTickJob],
    [alertJob(alert), AlertJob],
  ];
  for (const [spec, schema] of cases) {
    t.ok(schema.safeParse(spec.data).success, `${spec.name} accepted by its schema`);
    t.ok(Object.values(JOB_NAMES).includes(spec.name as never), `${spec.name} is a known job name`);
  }
});

t.test('ids and options', async (t) => {
  t.equal(jobId('r', 'a:b c'), 'r~a_b_c');
  t.equal(jobId('r', '123'), 'r~123', 'never a plain integer');
  t.equal(
    undeliverableJob({ kind: 'undeliverable', agent: 'a', instruction_id: 'i:2', reason: 'x' }).opts.jobId,
    `undeliverable~${opaqueId('i:2')}`,
    'the instruction id only as a digest',
  );
  t.equal(alertJob(alert).opts.jobId, alert.id, 'an alert is added once');
  t.equal(alertJob(alert).opts.attempts, 20);
  t.match(agentJob({ agent: 'a', trigger: 'connect', run_id: null, tasks: null, retry: 1 }, 1500).opts, {
    delay: 1500,
    attempts: 3,
  });
  t.same(pushPollJob('abc').opts.jobId, 'push-abc');
  t.same(pushPollJob('abc').data, { retry_if_busy: true, after: 'abc' });
});

t.test('poll and alert payloads are validated like the others', async (t) => {
  t.same(parseJob(PollJob, {}, 'poll'), { retry_if_busy: false }, 'a scheduled poll');
  t.equal(parseJob(PollJob, { retry_if_busy: true, after: 'abc' }, 'poll').retry_if_busy, true);
  t.throws(() => parseJob(PollJob, { retry_if_busy: 'yes' }, 'poll'), InvalidJobError);
  t.throws(() => parseJob(PollJob, null, 'poll'), InvalidJobError);
  t.same(parseJob(AlertJob, { alert, url: 'https://x' }, 'alert').alert, alert);
  t.throws(() => parseJob(AlertJob, { alert: { id: 'x' }, url: 'https://x' }, 'alert'), /invalid alert job/);
  t.notOk('url' in parseJob(AlertJob, { alert, url: 'https://x' }, 'alert'), "an older job's url is ignored");
  const broken = { ...alert, payload: { ...alert.payload, event: 'nope' } };
  t.throws(() => parseJob(AlertJob, { alert: broken, url: 'https://x' }, 'alert'), InvalidJobError);
  t.throws(() => parseJob(FanoutJob, { trigger: 'sometimes' }, 'fanout'), InvalidJobError);
});

t.test('a worker fails an invalid payload at once, without retrying', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const keys = new Keys(redis.prefix);
  const connection = createRedis(redis.url);
  t.teardown(() => connection.disconnect());
  const queue = openQueue(QUEUE_NAMES.poll, connection, keys);
  let runs = 0;
  const worker = createWorker(
    QUEUE_NAMES.poll,
    async (job) => {
      runs++;
      return parseJob(PollJob, job.data, 'poll');
    },
    { connection, keys, concurrency: 1, logger: pino({ level: 'silent' }) },
  );
  t.teardown(async () => {
    await worker.close(1000);
    await queue.close();
  });
  await queue.add('poll', { retry_if_busy: 'garbage' }, { jobId: 'bad', attempts: 5, backoff: 10 });
  await addJob(queue, pollNowJob());
  const bad = await waitFor(
    'the bad job to fail',
    async () => {
      // State first, then the job: a job read before it failed would carry its old fields.
      if ((await queue.getJobState('bad')) !== 'failed') return null;
      return (await queue.getJob('bad')) ?? null;
    },
    (job) => job !== null,
  );
  t.equal(bad?.attemptsMade, 1, 'one attempt only: UnrecoverableError');
  t.match(bad?.failedReason, /invalid poll job/);
  await waitFor(
    'the good job to run',
    async () => runs,
    (n) => n >= 2,
  );
});
