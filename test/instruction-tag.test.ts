/**
 * Self-authenticating instruction ids (shared/identity/instruction-tag.ts): literal ids computed
 * independently (Python's hmac module), the tag check, execution ids.
 */
import t from 'tap';
import {
  executionBelongsTo,
  executionOf,
  INSTRUCTION_ID_LENGTH,
  instructionBelongsTo,
  instructionOfExecution,
  issueInstructionId,
} from '../shared/identity/instruction-tag.js';

const KEY = Buffer.alloc(32, 1);

t.test('ids match literals computed elsewhere', async (t) => {
  t.equal(issueInstructionId(Buffer.from('k'), 'a', 's'), 'iohHl6vXiWzDjz8qvxt0T8Q5A4pFCvG8V');
  t.equal(
    issueInstructionId(KEY, 'web-01', 'job-1\u00001700000000000\u0000'),
    'iyOrpSEAPUvWLPwZcNJtLPANp5QVSjL6p',
  );
  t.equal(INSTRUCTION_ID_LENGTH, 33);
});

t.test(
  'the same seed and agent give the same id; another agent, the same nonce and another tag',
  async (t) => {
    const a = issueInstructionId(KEY, 'web-01', 'seed');
    t.equal(issueInstructionId(KEY, 'web-01', 'seed'), a);
    const b = issueInstructionId(KEY, 'web-02', 'seed');
    t.not(b, a);
    t.equal(b.slice(0, 17), a.slice(0, 17), 'the nonce depends on the seed only');
    t.not(issueInstructionId(Buffer.alloc(32, 2), 'web-01', 'seed'), a, 'another key, another id');
  },
);

t.test('an id belongs to the agent it was issued to, under that key only', async (t) => {
  const id = issueInstructionId(KEY, 'web-01', 'seed');
  t.ok(instructionBelongsTo(KEY, 'web-01', id));
  t.notOk(instructionBelongsTo(KEY, 'web-02', id));
  t.notOk(instructionBelongsTo(Buffer.alloc(32, 2), 'web-01', id));
  // An agent name that only differs by where the separator falls.
  t.notOk(instructionBelongsTo(KEY, 'web-01\u0000', id));
  for (const bad of [
    '',
    'i1',
    `${id}x`,
    id.slice(0, -1),
    `x${id.slice(1)}`,
    `i${'A'.repeat(32)}`,
    `${id.slice(0, 20)}+${id.slice(21)}`,
  ])
    t.notOk(instructionBelongsTo(KEY, 'web-01', bad), JSON.stringify(bad));
});

t.test('every one-bit flip of an id is rejected', async (t) => {
  const id = issueInstructionId(KEY, 'web-01', 'flip');
  const bytes = Buffer.from(id.slice(1), 'base64url');
  let rejected = 0;
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const flipped = Buffer.from(bytes);
    flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
    if (!instructionBelongsTo(KEY, 'web-01', `i${flipped.toString('base64url')}`)) rejected++;
  }
  t.equal(rejected, 192);
  // A last character whose unused low bits differ decodes to the same bytes: refused too.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = id.at(-1) as string;
  const sibling = alphabet[alphabet.indexOf(last) ^ 1] as string;
  t.notOk(instructionBelongsTo(KEY, 'web-01', `${id.slice(0, -1)}${sibling}`));
});

t.test('10,000 ids of distinct seeds are distinct', async (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 10_000; i++) ids.add(issueInstructionId(KEY, `agent-${i % 7}`, `job-${i}`));
  t.equal(ids.size, 10_000);
});

t.test('execution ids: `<instruction>.<index>`', async (t) => {
  const id = issueInstructionId(KEY, 'web-01', 'exec');
  t.equal(instructionOfExecution(`${id}.0`), id);
  t.equal(instructionOfExecution(`${id}.12`), id);
  for (const bad of [id, `${id}.`, `${id}.x`, `${id}.01`, `${id}.-1`, '.0', `${id}.1234567`])
    t.equal(instructionOfExecution(bad), null, bad);
  t.ok(executionBelongsTo(KEY, 'web-01', `${id}.3`));
  t.notOk(executionBelongsTo(KEY, 'web-02', `${id}.3`));
  t.notOk(executionBelongsTo(KEY, 'web-01', `${id}-3`));
  t.ok(executionOf(id, `${id}.3`));
  t.notOk(executionOf(id, `${issueInstructionId(KEY, 'web-01', 'other')}.3`));
});
