/** The wire schemas: the `results` batch frame next to the single messages it carries. */
import t from 'tap';
import { resultsFrame } from '../agent/frame-batcher.js';
import {
  type CheckResultMessage,
  encode,
  type InstructionReceiptMessage,
  MAX_RESULTS_PER_FRAME,
  parseAgentMessage,
  parseGatewayMessage,
  type StepResultMessage,
  type TaskResultMessage,
} from '../shared/protocol.js';

const receipt: InstructionReceiptMessage = {
  type: 'instruction_receipt',
  instruction_id: 'i-1',
  accepted: true,
  reason: null,
};
const base = { instruction_id: 'i-1', execution_id: 'i-1.0', task: 'motd' };
const check = (id: string): CheckResultMessage => ({
  type: 'check_result',
  result_id: id,
  ...base,
  step: 'file',
  satisfied: true,
  exit_code: 0,
  duration_ms: 3,
  output_tail: '',
});
const stepResult = {
  step: 'file',
  type: 'shell' as const,
  outcome: 'satisfied' as const,
  exit_code: 0,
  apply_exit_code: null,
  duration_ms: 3,
  output_tail: 'ok\n',
  error: null,
};
const step = (id: string): StepResultMessage => ({
  type: 'step_result',
  result_id: id,
  ...base,
  result: stepResult,
});
const taskResult = (id: string): TaskResultMessage => ({
  type: 'task_result',
  result_id: id,
  ...base,
  mode: 'check',
  outcome: 'satisfied',
  started_at: '2025-03-13T14:22:00.000Z',
  finished_at: '2025-03-13T14:22:01.000Z',
  duration_ms: 1000,
  steps: [stepResult],
});

t.test('a results frame carries receipts and results, in order', async (t) => {
  const messages = [receipt, check('r1'), step('r2'), taskResult('r3')];
  const parsed = parseAgentMessage(encode({ type: 'results', messages }));
  t.ok(parsed.ok);
  t.same(parsed.ok && parsed.message, { type: 'results', messages });
  // The agent builds the frame from already encoded items: the same thing.
  t.same(parseAgentMessage(resultsFrame(messages.map((m) => encode(m)))), parsed);
});

t.test('single messages stay valid (agents that do not batch)', async (t) => {
  for (const m of [receipt, check('r1'), step('r2'), taskResult('r3')]) {
    const parsed = parseAgentMessage(encode(m));
    t.same(parsed, { ok: true, message: m }, m.type);
  }
});

t.test('a bad item is named by its index and path', async (t) => {
  const bad = { ...taskResult('r4'), steps: [{ ...stepResult, outcome: 'nope' }] };
  const parsed = parseAgentMessage(
    JSON.stringify({ type: 'results', messages: [receipt, check('r1'), step('r2'), bad] }),
  );
  t.equal(parsed.ok, false);
  t.match(!parsed.ok && parsed.error, /^invalid message at messages\.3\.steps\.0\.outcome: /);

  const missing = { ...check('r5') } as Record<string, unknown>;
  delete missing.result_id;
  const second = parseAgentMessage(JSON.stringify({ type: 'results', messages: [receipt, missing] }));
  t.match(!second.ok && second.error, /^invalid message at messages\.1\.result_id: /);
});

t.test('output, registers, heartbeats and nested batches are not batch items', async (t) => {
  const output = {
    type: 'output',
    execution_id: 'e',
    task: 't',
    step: 's',
    phase: 'check',
    stream: 'stdout',
    line: 'x',
  };
  for (const item of [output, { type: 'heartbeat', running: [] }, { type: 'results', messages: [receipt] }]) {
    const parsed = parseAgentMessage(JSON.stringify({ type: 'results', messages: [receipt, item] }));
    t.match(!parsed.ok && parsed.error, /^invalid message at messages\.1\.type: /, item.type);
  }
});

t.test('a batch holds 1 to MAX_RESULTS_PER_FRAME items', async (t) => {
  t.equal(MAX_RESULTS_PER_FRAME, 1000);
  const many = (n: number) => Array.from({ length: n }, (_, i) => taskResult(`r-${i}`));
  t.ok(parseAgentMessage(encode({ type: 'results', messages: many(MAX_RESULTS_PER_FRAME) })).ok);
  const over = parseAgentMessage(encode({ type: 'results', messages: many(MAX_RESULTS_PER_FRAME + 1) }));
  t.match(!over.ok && over.error, /^invalid message at messages: .*1000/);
  const empty = parseAgentMessage(JSON.stringify({ type: 'results', messages: [] }));
  t.match(!empty.ok && empty.error, /^invalid message at messages: /);
  const notArray = parseAgentMessage(JSON.stringify({ type: 'results', messages: receipt }));
  t.match(!notArray.ok && notArray.error, /^invalid message at messages: /);
});

t.test('result_retry: result ids bounded like result_ack, a non-negative integer delay', async (t) => {
  const valid = { type: 'result_retry', result_ids: ['r1', 'r2'], retry_after_ms: 1000 };
  t.same(parseGatewayMessage(JSON.stringify(valid)), { ok: true, message: valid });
  t.ok(parseGatewayMessage(JSON.stringify({ ...valid, retry_after_ms: 0 })).ok, 'zero: at once');
  const many = Array.from({ length: 10_000 }, (_, i) => `r-${i}`);
  t.ok(parseGatewayMessage(JSON.stringify({ ...valid, result_ids: many })).ok, '10,000 ids');
  const bad: Array<[string, unknown]> = [
    ['retry_after_ms', { ...valid, retry_after_ms: -1 }],
    ['retry_after_ms', { ...valid, retry_after_ms: 1.5 }],
    ['retry_after_ms', { ...valid, retry_after_ms: '1000' }],
    ['retry_after_ms', { type: 'result_retry', result_ids: ['r1'] }],
    ['result_ids', { ...valid, result_ids: [...many, 'one-too-many'] }],
    ['result_ids', { ...valid, result_ids: 'r1' }],
    ['result_ids.0', { ...valid, result_ids: [''] }],
    ['result_ids.1', { ...valid, result_ids: ['r1', 'x'.repeat(129)] }],
  ];
  for (const [path, message] of bad) {
    const parsed = parseGatewayMessage(JSON.stringify(message));
    t.match(
      !parsed.ok && parsed.error,
      new RegExp(`^invalid message at ${path.replace('.', '\\.')}: `),
      path,
    );
  }
});
