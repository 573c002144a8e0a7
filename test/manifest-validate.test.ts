import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { validate } from '../bin/commands/validate.js';
import { packageRoot } from '../shared/paths.js';

const fixtures = join(packageRoot, 'test/fixtures/manifests');
const examples = join(packageRoot, 'examples');

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await validate(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

t.test('examples/ validate cleanly and --json prints the state', async (t) => {
  const plain = await run([examples]);
  t.equal(plain.code, 0, plain.stderr);
  t.equal(plain.stderr, '');
  t.match(plain.stdout, /7 task\(s\) in 3 file\(s\), 0 warning\(s\), no errors/);
  const json = await run([examples, '--json']);
  t.equal(json.code, 0);
  const state = JSON.parse(json.stdout) as {
    tasks: { name: string; selector: { match_labels: Record<string, string> }; steps: { type: string }[] }[];
  };
  t.same(Object.keys(state), ['tasks']);
  const names = state.tasks.map((x) => x.name);
  t.same(names, [...names].sort(), 'sorted by name');
  t.same(
    new Set(state.tasks.flatMap((x) => x.steps.map((s) => s.type))),
    new Set(['shell', 'systemd', 'mise']),
    'all executors',
  );
  const demo = state.tasks.filter((x) => x.selector.match_labels['role'] === 'demo');
  t.ok(demo.length >= 1, 'a demo task');
  t.notMatch(JSON.stringify(demo), /"\/(?!tmp\/fluke-demo)[a-z]/, 'demo tasks only touch /tmp/fluke-demo');
});

t.test('errors print as file:line:col and exit 1', async (t) => {
  const r = await run([join(fixtures, 'bad')]);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], /bad\/broken\.fluke\.hcl:3:3: shell "a": missing required attribute "check"$/);
  t.match(lines[1], /bad\/broken\.fluke\.hcl:7:5: systemd "b": unit "nginx" needs a unit type suffix/);
  t.match(
    lines[2],
    /bad\/broken\.fluke\.hcl:8:5: systemd "b": state must be one of running, stopped; got "started"$/,
  );
  t.match(lines[3], /3 error\(s\), 0 warning\(s\)/);
});

t.test('warnings print as file:line: warning: and exit 0', async (t) => {
  const r = await run([join(fixtures, 'warn')]);
  t.equal(r.code, 0);
  t.match(r.stderr, /warn\/all\.fluke\.hcl:2: warning: task "everywhere": selector matches every host\n/);
});

t.test('missing directory, no manifests, --glob and bad options', async (t) => {
  const missing = await run([join(fixtures, 'nope')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no such directory/);
  const none = await run([fixtures, '--glob', '**/*.nothing']);
  t.equal(none.code, 1);
  t.match(none.stderr, /no manifest files matching \*\*\/\*\.nothing under/);
  const globbed = await run([fixtures, '--glob=warn/*.fluke.hcl']);
  t.equal(globbed.code, 0);
  t.equal((await run(['--frobnicate'])).code, 2);
  t.equal((await run(['a', 'b'])).code, 2);
});

t.test('as a real process through bin/fluke.ts', async (t) => {
  const script =
    "import { main } from './bin/fluke.ts'; process.exitCode = await main(process.argv.slice(1));";
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, 'validate', 'test/fixtures/manifests/bad'],
    {
      cwd: packageRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 1);
  t.match(
    stderr,
    /^test\/fixtures\/manifests\/bad\/broken\.fluke\.hcl:3:3: shell "a": missing required attribute "check"$/m,
  );
});
