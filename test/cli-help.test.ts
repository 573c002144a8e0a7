/**
 * Every `fluke` subcommand answers `--help` (and `-h`) with its usage and flags, exit 0, and a
 * mistyped or malformed flag with one `fluke <command>: …` line and a usage line, exit 2 — never
 * a stack trace, even for the commands that start services. The built `bin/fluke` as a real
 * process: run `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { root } from '../testkit/system.js';

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fluke(args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    // A config that would start something if a flag were ever ignored: a port nobody listens on.
    const env = { ...process.env, FLUKE_SERVER: 'http://127.0.0.1:9', REDIS_URL: 'redis://127.0.0.1:9' };
    execFile(
      process.execPath,
      [join(root, 'bin', 'fluke'), ...args],
      { cwd: root, env, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Each command and flags its help must name. */
const COMMANDS: Record<string, string[]> = {
  server: ['--config', '--data-dir'],
  gateway: ['--config', '--data-dir'],
  reconciler: ['--config', '--data-dir', '--exit-when-idle'],
  agent: ['--config'],
  dev: ['--data-dir', '--http-port', '--agents-port', '--poll-interval'],
  validate: ['--glob', '--json'],
  get: ['--agent', '--task', '--limit', '--server', '--output'],
  describe: ['--server', '--output'],
  logs: ['--follow', '--server', '--output'],
  reconcile: ['--no-follow', '--timeout', '--server', '--output'],
  version: ['--output'],
};

const noTrace = (text: string) => !/\n\s+at |ERR_PARSE_ARGS|Error:/.test(text);

t.test('every command in the top-level usage is covered here', async (t) => {
  const top = await fluke(['--help']);
  t.equal(top.code, 0);
  const listed = [...top.stdout.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]);
  t.same(listed.sort(), Object.keys(COMMANDS).sort());
});

for (const [command, flags] of Object.entries(COMMANDS)) {
  t.test(`fluke ${command}: --help, and an unknown flag`, async (t) => {
    const [help, unknown] = await Promise.all([
      fluke([command, '--help']),
      fluke([command, '--no-such-flag']),
    ]);
    t.equal(help.code, 0, '--help exits 0');
    t.match(help.stdout, new RegExp(`^usage: fluke ${command} `), '--help prints the usage');
    for (const flag of [...flags, '--help']) t.match(help.stdout, flag, `--help names ${flag}`);
    t.equal(help.stderr, '', '--help: nothing on stderr');

    t.equal(unknown.code, 2, 'an unknown flag exits 2');
    t.equal(unknown.stdout, '');
    t.match(
      unknown.stderr,
      new RegExp(`^fluke ${command}: unknown flag --no-such-flag\\n\\nusage: fluke ${command} .*\\n`),
    );
    t.ok(noTrace(unknown.stderr), 'no stack trace');
  });
}

t.test('fluke agent release: --help, an unknown flag, a missing NAME', async (t) => {
  const [help, unknown, missing] = await Promise.all([
    fluke(['agent', 'release', '--help']),
    fluke(['agent', 'release', '--no-such-flag']),
    fluke(['agent', 'release']),
  ]);
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: fluke agent release NAME/);
  for (const flag of ['--server', '--output', '--help']) t.match(help.stdout, flag);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /^fluke agent release: unknown flag --no-such-flag\n/);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^fluke agent release: agent release needs a NAME\n/);
  t.ok(noTrace(unknown.stderr) && noTrace(missing.stderr), 'no stack trace');
});

t.test('-h is --help; a flag without its value is a usage error, not a crash', async (t) => {
  const shorts = await Promise.all(['server', 'agent', 'get'].map((c) => fluke([c, '-h'])));
  for (const [i, c] of ['server', 'agent', 'get'].entries()) {
    t.equal(shorts[i]?.code, 0, `${c} -h`);
    t.match(shorts[i]?.stdout, new RegExp(`^usage: fluke ${c} [\\s\\S]*-h, --help`));
  }
  const malformed: [string[], RegExp][] = [
    [['server', '--config'], /^fluke server: -c\/--config needs a value\n\nusage: fluke server /],
    [['dev', '--http-port'], /^fluke dev: --http-port needs a value\n\nusage: fluke dev /],
    [['dev', '--http-port', 'web'], /^fluke dev: --http-port must be a port number, not "web"\n/],
    [['version', '--json'], /^fluke version: unknown flag --json\n\nusage: fluke version /],
    [['logs', 'x', '--follow=yes'], /^fluke logs: -f\/--follow takes no value\n/],
  ];
  const exits = await Promise.all(malformed.map(([argv]) => fluke(argv)));
  for (const [i, [argv, message]] of malformed.entries()) {
    t.equal(exits[i]?.code, 2, argv.join(' '));
    t.match(exits[i]?.stderr, message, argv.join(' '));
    t.ok(noTrace(exits[i]?.stderr ?? ''), 'no stack trace');
  }
});

t.test('fluke help COMMAND, and flags before any command', async (t) => {
  const help = await fluke(['help', 'reconcile']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: fluke reconcile /);
  const bare = await fluke(['help']);
  t.equal(bare.code, 0);
  t.match(bare.stdout, /^usage: fluke <command>/);
  const nothing = await fluke([]);
  t.equal(nothing.code, 2, 'no command at all is a usage error');
  const flag = await fluke(['--no-such-flag']);
  t.equal(flag.code, 2);
  t.match(flag.stderr, /^fluke: unknown flag --no-such-flag\n\nusage: fluke <command>/);
  const unknown = await fluke(['help', 'frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /^fluke: unknown command "frobnicate"/);
  const exitWhenIdle = await fluke(['gateway', '--exit-when-idle']);
  t.equal(exitWhenIdle.code, 2, '--exit-when-idle is the reconciler’s only');
  t.match(exitWhenIdle.stderr, /^fluke gateway: unknown flag --exit-when-idle\n/);
});
