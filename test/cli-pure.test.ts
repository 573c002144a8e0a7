/** The CLI's pure parts: argument parsing, tables, SSE parsing, reconcile lines, formatting. */
import t from 'tap';
import type { RunProgress } from '../bin/cli/api-types.js';
import { packedRef } from '../bin/cli/build-info.js';
import { EXIT, UsageError } from '../bin/cli/cli-error.js';
import { type CommandSpec, helpText, readCommandLine } from '../bin/cli/command-line.js';
import {
  ago,
  countsText,
  driftText,
  labelsText,
  outputLine,
  selectorText,
  terminalSafe,
} from '../bin/cli/format.js';
import { renderFields, renderTable, truncate } from '../bin/cli/render-table.js';
import { RunFollower, reconcileTarget, runExitCode, summaryLine } from '../bin/cli/run-follower.js';
import { type SseEvent, sseEvents } from '../bin/cli/sse-events.js';

const SPEC: CommandSpec = {
  name: 'demo',
  synopsis: 'THING [flags]',
  flags: [
    { name: 'output', short: 'o', value: 'FMT', help: 'table or json' },
    { name: 'server', value: 'URL', help: 'the server' },
    { name: 'follow', short: 'f', help: 'keep going\nuntil the end' },
    { name: 'no-follow', help: 'return at once' },
  ],
};

/** What the old hand-written parser returned: the command line, or `{ error }`. */
function parseArgs(argv: string[], spec: CommandSpec = SPEC) {
  try {
    return readCommandLine(argv, spec, () => {});
  } catch (err) {
    if (err instanceof UsageError) return { error: err.message };
    throw err;
  }
}

t.test('readCommandLine: every flag spelling, positionals around them, -- ends flags', async (t) => {
  t.same(parseArgs(['agents', '-o', 'json', '--server', 'http://x:1']), {
    positionals: ['agents'],
    flags: { output: 'json', server: 'http://x:1' },
  });
  t.same(parseArgs(['-ojson', '--server=http://y', 'a', '-f', 'b']), {
    positionals: ['a', 'b'],
    flags: { output: 'json', server: 'http://y', follow: true },
  });
  t.same(parseArgs(['-o=table', '--no-follow', '--', '-f', '--weird']), {
    positionals: ['-f', '--weird'],
    flags: { output: 'table', 'no-follow': true },
  });
  t.same(parseArgs(['-o', 'table', '-o', 'json']), { positionals: [], flags: { output: 'json' } });
  t.same(parseArgs(['--server', '--strange-but-a-value']), {
    positionals: [],
    flags: { server: '--strange-but-a-value' },
  });
});

t.test('readCommandLine refuses what it does not know instead of ignoring it', async (t) => {
  t.same(parseArgs(['--agnet', 'x']), { error: 'unknown flag --agnet' });
  t.same(parseArgs(['--agnet=x']), { error: 'unknown flag --agnet' });
  t.same(parseArgs(['-x']), { error: 'unknown flag -x' });
  t.same(parseArgs(['-o']), { error: '-o/--output needs a value' });
  t.same(parseArgs(['--server']), { error: '--server needs a value' });
  t.same(parseArgs(['--follow=yes']), { error: '-f/--follow takes no value' });
  try {
    readCommandLine(['--nope'], SPEC, () => {});
    t.fail('should throw');
  } catch (err) {
    t.ok(err instanceof UsageError);
    t.equal((err as UsageError).exitCode, EXIT.USAGE);
    t.equal(
      (err as UsageError).usage,
      'usage: fluke demo THING [flags]\nRun "fluke demo --help" for its flags.\n',
    );
  }
});

t.test(
  'readCommandLine: defaults filled in; -h/--help prints the help made from the same spec',
  async (t) => {
    const spec: CommandSpec = {
      ...SPEC,
      flags: [...SPEC.flags, { name: 'glob', value: 'GLOB', default: '**/*.hcl', help: 'which files' }],
    };
    t.same(parseArgs([], spec), { positionals: [], flags: { glob: '**/*.hcl' } });
    t.same(parseArgs(['--glob', 'x'], spec), { positionals: [], flags: { glob: 'x' } });
    for (const argv of [['-h'], ['--help'], ['a', '--wide', '--help']]) {
      let printed = '';
      t.equal(
        readCommandLine(argv, spec, (text) => {
          printed += text;
        }),
        null,
        argv.join(' '),
      );
      t.equal(printed, helpText(spec));
    }
    t.equal(
      helpText(spec),
      [
        'usage: fluke demo THING [flags]',
        'flags:',
        '  -o, --output FMT    table or json',
        '  --server URL        the server',
        '  -f, --follow        keep going',
        '                      until the end',
        '  --no-follow         return at once',
        '  --glob GLOB         which files (default **/*.hcl)',
        '  -h, --help          this text',
        '',
      ].join('\n'),
    );
  },
);

t.test('renderTable: aligned, upper-case headers, no trailing spaces, "-" for empty', async (t) => {
  const out = renderTable(
    ['name', 'connected', 'drift'],
    [
      ['web-01', 'yes', '2/2 ok'],
      ['db-primary-eu', 'no', null],
    ],
  );
  t.equal(
    out,
    [
      'NAME           CONNECTED  DRIFT',
      'web-01         yes        2/2 ok',
      'db-primary-eu  no         -',
      '',
    ].join('\n'),
  );
  for (const line of out.split('\n')) t.notMatch(line, / $/, 'no trailing space');
});

t.test('renderTable: long cells truncated, newlines flattened, fitted to a width', async (t) => {
  const long = 'x'.repeat(100);
  const out = renderTable(['a', 'b'], [[long, 'multi\nline\tcell']], { maxCell: 20 });
  t.equal(out, `A                     B\n${'x'.repeat(19)}…  multi line cell\n`);
  const fitted = renderTable(['name', 'description'], [['web', 'd'.repeat(80)]], { width: 40 });
  for (const line of fitted.trimEnd().split('\n')) t.ok(line.length <= 40, `fits 40: ${line.length}`);
  t.match(fitted, /\nweb {3}d{33}…\n/, 'the wide column gave way');
  t.equal(renderTable(['a'], [['1']], { indent: '  ' }), '  A\n  1\n');
  t.equal(truncate('héllo wörld', 6), 'héllo…');
  t.equal(truncate('short', 10), 'short');
});

t.test('renderFields aligns values and keeps multi-line values under the first line', async (t) => {
  t.equal(
    renderFields([
      ['Name', 'web'],
      ['Description', null],
      ['Command', 'set -e\necho hi'],
    ]),
    'Name:         web\nDescription:  -\nCommand:      set -e\n              echo hi\n',
  );
});

/** The events sseEvents yields for these chunks, delivered one by one as a stream would. */
async function feed(chunks: string[]): Promise<SseEvent[]> {
  async function* stream() {
    yield* chunks;
  }
  const events: SseEvent[] = [];
  for await (const e of sseEvents(stream())) events.push(e);
  return events;
}

t.test('sseEvents: events, multi-line data, comments, ids, default type', async (t) => {
  const text =
    ': ping\n\nevent: output\ndata: {"line":"a"}\n\ndata: one\ndata: two\nid: 7\n\nevent: end\ndata:{"outcome":"applied"}\n\n';
  t.same(await feed([text]), [
    { event: 'output', data: '{"line":"a"}', id: null },
    { event: 'message', data: 'one\ntwo', id: '7' },
    { event: 'end', data: '{"outcome":"applied"}', id: null },
  ]);
});

t.test('sseEvents: any chunking gives the same events, CRLF split included', async (t) => {
  const text = '\uFEFFevent: output\r\ndata: x y\r\n\r\n: c\r\nevent: end\rdata: done\r\r';
  const whole = await feed([text]);
  t.same(whole, [
    { event: 'output', data: 'x y', id: null },
    { event: 'end', data: 'done', id: null },
  ]);
  for (let size = 1; size <= 7; size++) {
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
    t.same(await feed(chunks), whole, `chunks of ${size}`);
  }
});

t.test('sseEvents: fields without data dispatch nothing; an unterminated event is dropped', async (t) => {
  t.same(
    await feed([
      'event: output\n\n', // no data, no event; the blank line resets the type
      'data: a\n',
      '\n',
      'data\nfoo: bar\nretry: 250\n\n',
      'data:  two spaces\n\n',
      'data: never terminated\n',
    ]),
    [
      { event: 'message', data: 'a', id: null },
      { event: 'message', data: '', id: null },
      { event: 'message', data: ' two spaces', id: null },
    ],
  );
});

const progress = (over: Partial<RunProgress>): RunProgress => ({
  meta: { id: 'r1', target: 'all', name: null, created_at: '2026-01-01T00:00:00Z' },
  done: false,
  agents: {},
  results: [],
  executions: [],
  summary: { targeted_agents: 0, pending: 0, succeeded: 0, failed: 0, skipped: 0, timed_out: 0 },
  ...over,
});

t.test('RunFollower prints each result once, as it arrives, with its execution id', async (t) => {
  const f = new RunFollower();
  t.same(f.next(progress({})), [], 'before fan-out: nothing');
  const first = progress({
    agents: { 'web-01': 'dispatched', 'db-01': 'dispatched', ghost: 'not_connected' },
    results: [
      { agent: 'db-01', task: 'schema', outcome: 'pending', execution_id: null },
      { agent: 'web-01', task: 'site', outcome: 'applied', execution_id: 'i1.0' },
    ],
    executions: [{ agent: 'db-01', task: 'schema', execution_id: 'i2.0' }],
  });
  t.same(f.next(first), ['web-01  site    applied        i1.0', 'ghost   -       not_connected  -']);
  t.same(f.next(first), [], 'nothing twice');
  const second = progress({
    ...first,
    done: true,
    results: [
      { agent: 'db-01', task: 'schema', outcome: 'failed', execution_id: null },
      { agent: 'web-01', task: 'site', outcome: 'applied', execution_id: 'i1.0' },
    ],
    summary: { targeted_agents: 3, pending: 0, succeeded: 1, failed: 1, skipped: 1, timed_out: 0 },
  });
  t.same(f.next(second), ['db-01   schema  failed         i2.0'], 'id from the dispatched executions');
  t.equal(summaryLine(second), 'done: 3 agents, 1 succeeded, 1 failed, 1 skipped, 0 timed out');
  t.equal(runExitCode(second), EXIT.FAILURE);
});

t.test('runExitCode: failed or timed out or not done is non-zero; skipped alone is not', async (t) => {
  const s = { targeted_agents: 1, pending: 0, succeeded: 1, failed: 0, skipped: 0, timed_out: 0 };
  t.equal(runExitCode(progress({ done: true, summary: s })), EXIT.OK);
  t.equal(runExitCode(progress({ done: true, summary: { ...s, skipped: 2 } })), EXIT.OK);
  t.equal(runExitCode(progress({ done: true, summary: { ...s, timed_out: 1 } })), EXIT.FAILURE);
  t.equal(runExitCode(progress({ done: false, summary: { ...s, pending: 1 } })), EXIT.FAILURE);
  t.equal(
    summaryLine(progress({ done: false, summary: { ...s, targeted_agents: 1, pending: 1 } })),
    'not done: 1 agent, 1 succeeded, 0 failed, 0 skipped, 0 timed out, 1 pending',
  );
});

t.test('no_tasks is reported for a single-agent run only', async (t) => {
  const agentRun = progress({
    meta: { id: 'r', target: 'agent', name: 'web-01', created_at: '' },
    agents: { 'web-01': 'no_tasks' },
  });
  t.same(new RunFollower().next(agentRun), ['web-01  -  no_tasks       -']);
  t.same(new RunFollower().next({ ...agentRun, meta: { ...agentRun.meta, target: 'all' } }), []);
});

t.test('reconcileTarget', async (t) => {
  t.same(reconcileTarget(['all']), { target: 'all' });
  t.same(reconcileTarget(['agent', 'web-01']), { target: 'agent', name: 'web-01' });
  t.same(reconcileTarget(['task', 'site']), { target: 'task', name: 'site' });
  t.match(reconcileTarget([]), /missing target/);
  t.match(reconcileTarget(['agent']), /needs a NAME/);
  t.match(reconcileTarget(['all', 'x']), /unexpected argument x/);
  t.match(reconcileTarget(['task', 'a', 'b']), /unexpected argument b/);
  t.match(reconcileTarget(['agents', 'x']), /unknown target "agents"/);
});

t.test('formatters', async (t) => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  t.equal(ago('2026-01-01T11:59:50Z', now), '10s ago');
  t.equal(ago('2026-01-01T11:50:00Z', now), '10m ago');
  t.equal(ago('2026-01-01T07:00:00Z', now), '5h ago');
  t.equal(ago('2025-12-25T12:00:00Z', now), '7d ago');
  t.equal(ago(null, now), '-');
  t.equal(labelsText({ role: 'web', env: 'prod' }), 'env=prod,role=web');
  t.equal(driftText({ tasks: 3, ok: 1, drifted: 1, failing: 0, unknown: 1 }), '1/3 ok, 1 drifted, 1 unknown');
  t.equal(driftText({ tasks: 0, ok: 0, drifted: 0, failing: 0, unknown: 0 }), 'no tasks');
  t.equal(
    countsText({ unknown: 1, drifted: 2, satisfied: 3, weird: 1, failed: 0 }),
    'satisfied=3 drifted=2 unknown=1 weird=1',
  );
  t.equal(
    selectorText({
      match_labels: { role: 'web' },
      match_expressions: [
        { key: 'zone', operator: 'In', values: ['a', 'b'] },
        { key: 'canary', operator: 'DoesNotExist', values: null },
      ],
    }),
    'role=web, zone In (a, b), canary DoesNotExist',
  );
  t.equal(selectorText({ match_labels: {}, match_expressions: [] }), '(every agent)');
  t.equal(
    outputLine({ step: 'conf', phase: 'apply', stream: 'stderr', line: 'oops\n' }),
    '[conf/apply stderr] oops',
  );
  t.equal(outputLine({ step: 'conf', phase: 'check', stream: 'stdout', line: 'ok' }), '[conf/check] ok');
});

t.test('packedRef finds a branch in packed-refs', async (t) => {
  const sha = 'a'.repeat(40);
  const text = `# pack-refs with: peeled fully-peeled sorted\n${'b'.repeat(40)} refs/heads/dev\n${sha} refs/heads/main\n^${'c'.repeat(40)}\n`;
  t.equal(packedRef(text, 'refs/heads/main'), sha);
  t.equal(packedRef(text, 'refs/heads/nope'), null);
});

t.test('terminalSafe: host output cannot drive the operator terminal', async (t) => {
  t.equal(terminalSafe('\u001b[31mred\u001b[0m text'), 'red text', 'colours removed');
  t.equal(terminalSafe('a\u001b]0;owned\u0007b'), 'ab', 'OSC title removed');
  t.equal(terminalSafe('a\u001b]8;;http://x\u001b\\link'), 'alink', 'OSC link removed');
  t.equal(
    terminalSafe('bell\u0007 cr\r tab\tok'),
    'bell? cr? tab\tok',
    'other controls shown as ?, tabs kept',
  );
  t.match(outputLine({ step: 's', phase: 'apply', stream: 'stdout', line: '\u001b[2Jclear' }), /\] clear$/);
});
