// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ManifestCompiler, ManifestReadError, readManifestDir } from '../shared/manifest/compile.js';

/** The original manifest example, verbatim (including its one-line block with two attributes). */
const ORIGINAL_EXAMPLE = `locals {
  app_dir = "/opt/app"
  node    = "22"
}

task "deploy_app" {
  description = "shown in UI and CLI"          # optional
  drift { policy = "alert_only" }              # optional; overrides the server default
  selector {
    match_labels = { role = "web", env = "production" }   # all must be present
    # beyond the original, optional: set-based expressions, all must hold
    # match_expressions = [{ key = "zone", operator = "In", values = ["a", "b"] },
    #                      { key = "canary", operator = "DoesNotExist" }]
  }
  mise "runtimes" { working_dir = local.app_dir  check_task = "check-node-\${local.node}" }
  shell "config" {
    check   = "test -f /etc/app/config.json"
    command = "cp \${local.app_dir}/config.example.json /etc/app/config.json"
  }
  systemd "app" { unit = "app.service" }
}
`;

const ORIGINAL_EXPECTED = {
  tasks: [
    {
      name: 'deploy_app',
      description: 'shown in UI and CLI',
      selector: { match_labels: { role: 'web', env: 'production' }, match_expressions: [] },
      drift: { policy: 'alert_only' },
      steps: [
        {
          type: 'mise',
          name: 'runtimes',
          working_dir: '/opt/app',
          check_task: 'check-node-22',
          apply_task: 'apply',
          git: null,
        },
        {
          type: 'shell',
          name: 'config',
          check: 'test -f /etc/app/config.json',
          command: 'cp /opt/app/config.example.json /etc/app/config.json',
          working_dir: null,
          run_as: null,
          env: {},
          on_failure: 'abort',
        },
        { type: 'systemd', name: 'app', unit: 'app.service', state: 'running', enabled: true },
      ],
    },
  ],
};

const compileOne = (content: string, path = 'm.fluke.hcl') =>
  new ManifestCompiler().compile([{ path, content }]);

t.test('the original manifest example compiles to the expected state', async (t) => {
  const r = await compileOne(ORIGINAL_EXAMPLE);
  t.same(r.errors, []);
  t.same(r.warnings, []);
  t.strictSame(JSON.parse(JSON.stringify(r.state)), ORIGINAL_EXPECTED);
  t.same(r.sources['deploy_app'], { file: 'm.fluke.hcl', line: 6, column: 1 });
  t.same(r.sources['deploy_app/config'], { file: 'm.fluke.hcl', line: 16, column: 3 });
});

t.test('the original example with its match_expressions uncommented', async (t) => {
  const src = ORIGINAL_EXAMPLE.replace('    # match_expressions', '    match_expressions').replace(
    '    #                      {',
    '                         {',
  );
  const r = await compileOne(src);
  t.same(r.errors, []);
  t.strictSame(r.state.tasks[0]?.selector, {
    match_labels: { role: 'web', env: 'production' },
    match_expressions: [
      { key: 'zone', operator: 'In', values: ['a', 'b'] },
      { key: 'canary', operator: 'DoesNotExist', values: null },
    ],
  });
});

t.test('every field and default of every executor', async (t) => {
  const r = await compileOne(`
task "full" {
  selector { match_labels = { a = "b" } }
  shell "s" {
    check       = "c"
    command     = "d"
    working_dir = "/w"
    run_as      = "deploy"
    env         = { A = "1", B_2 = "x" }
    on_failure  = "continue"
  }
  systemd "u" {
    unit    = "x.timer"
    state   = "stopped"
    enabled = false
  }
  mise "m" {
    working_dir = "/srv/app"
    check_task  = "ck"
    apply_task  = "ap"
    git {
      url    = "https://example.org/app.git"
      branch = "release"
    }
  }
  mise "defaults" {
    working_dir = "/srv/b"
    git { url = "git@example.org:b.git" }
  }
}
`);
  t.same(r.errors, []);
  t.strictSame(r.state.tasks[0]?.steps, [
    {
      type: 'shell',
      name: 's',
      check: 'c',
      command: 'd',
      working_dir: '/w',
      run_as: 'deploy',
      env: { A: '1', B_2: 'x' },
      on_failure: 'continue',
    },
    { type: 'systemd', name: 'u', unit: 'x.timer', state: 'stopped', enabled: false },
    {
      type: 'mise',
      name: 'm',
      working_dir: '/srv/app',
      check_task: 'ck',
      apply_task: 'ap',
      git: { url: 'https://example.org/app.git', branch: 'release' },
    },
    {
      type: 'mise',
      name: 'defaults',
      working_dir: '/srv/b',
      check_task: 'check',
      apply_task: 'apply',
      git: { url: 'git@example.org:b.git', branch: 'main' },
    },
  ]);
  t.equal(r.state.tasks[0]?.description, null);
  t.equal(r.state.tasks[0]?.drift, null);
});

t.test('steps keep declaration order across executor types; tasks sort by name', async (t) => {
  const step = (type: string, name: string) =>
    type === 'shell'
      ? `  shell "${name}" {\n    check = "c"\n    command = "d"\n  }`
      : type === 'systemd'
        ? `  systemd "${name}" { unit = "${name}.service" }`
        : `  mise "${name}" { working_dir = "/x" }`;
  const order = [
    ['systemd', 'z1'],
    ['shell', 'a2'],
    ['mise', 'm3'],
    ['shell', 'b4'],
    ['systemd', 'c5'],
    ['mise', 'a6'],
  ];
  const body = order.map(([type, name]) => step(type as string, name as string)).join('\n');
  const r = await new ManifestCompiler().compile([
    {
      path: 'b.fluke.hcl',
      content: `task "zeta" {\n  selector { match_labels = { a = "b" } }\n${body}\n}\n`,
    },
    {
      path: 'a.fluke.hcl',
      content: `task "alpha" {\n  selector { match_labels = { a = "b" } }\n${body}\n}\ntask "Beta" {\n  selector { match_labels = { a = "b" } }\n}\n`,
    },
  ]);
  t.same(r.errors, []);
  t.same(
    r.state.tasks.map((x) => x.name),
    ['Beta', 'alpha', 'zeta'],
  );
  t.same(
    r.state.tasks[2]?.steps.map((s) => `${s.type}:${s.name}`),
    order.map(([a, b]) => `${a}:${b}`),
  );
});

t.test('incremental: one changed file is the only one parsed again', async (t) => {
  const file = (i: number, extra = '') => ({
    path: `f${i}.fluke.hcl`,
    content: `locals {\n  dir${i} = "/srv/${i}"\n}\ntask "t${i}" {\n  selector { match_labels = { n = "${i}" } }\n  shell "s" {\n    check = "test -d \${local.dir${i}}${extra}"\n    command = "mkdir -p \${local.dir0}"\n  }\n}\n`,
  });
  const compiler = new ManifestCompiler();
  const files = [0, 1, 2, 3].map((i) => file(i));
  const first = await compiler.compile(files);
  t.same(first.errors, []);
  t.equal(compiler.parseCount, 4);
  const again = await compiler.compile(files);
  t.equal(compiler.parseCount, 4, 'nothing changed, nothing parsed');
  t.strictSame(again.state, first.state);
  files[2] = file(2, ' -a');
  const changed = await compiler.compile(files);
  t.equal(compiler.parseCount, 5, 'one file changed, one parse');
  t.equal(changed.state.tasks.find((x) => x.name === 't2')?.steps[0]?.type, 'shell');
  t.match(JSON.stringify(changed.state), /test -d \/srv\/2 -a/);
  files[0] = { path: 'f0.fluke.hcl', content: files[0]?.content.replace('/srv/0', '/data/0') ?? '' };
  const shared = await compiler.compile(files);
  t.equal(compiler.parseCount, 6);
  t.match(
    JSON.stringify(shared.state.tasks[3]),
    /mkdir -p \/data\/0/,
    "a changed local reaches other files' tasks",
  );
});

t.test('limits: each is a clear error, never a hang', async (t) => {
  const okTask = (n: string) => `task "${n}" {\n  selector { match_labels = { a = "b" } }\n}\n`;
  const first = async (limits: object, files: { path: string; content: string }[]) => {
    const r = await new ManifestCompiler(limits).compile(files);
    return r.errors.map((e) => e.message).join('\n');
  };
  t.match(
    await first(
      { maxFiles: 2 },
      [1, 2, 3].map((i) => ({ path: `${i}.fluke.hcl`, content: '' })),
    ),
    /more than 2 manifest files/,
  );
  t.match(
    await first({ maxFileBytes: 100 }, [{ path: 'a', content: `# ${'x'.repeat(200)}` }]),
    /202 bytes, more than the limit of 100/,
  );
  t.match(
    await first({ maxTotalBytes: 100 }, [
      { path: 'a', content: `# ${'x'.repeat(60)}` },
      { path: 'b', content: `# ${'x'.repeat(60)}` },
    ]),
    /exceed 100 bytes in total/,
  );
  t.match(
    await first({ maxTokensPerFile: 10 }, [{ path: 'a', content: 'a = 1\n'.repeat(20) }]),
    /more than 10 tokens/,
  );
  t.match(
    await first({ maxTasks: 2 }, [{ path: 'a', content: [1, 2, 3].map((i) => okTask(`t${i}`)).join('') }]),
    /more than 2 tasks/,
  );
  t.match(
    await first({ maxDepth: 5 }, [{ path: 'a', content: 'locals {\n  x = [[[[[[[1]]]]]]]\n}\n' }]),
    /nested deeper than 5/,
  );
  t.match(
    await first({ maxDepth: 3 }, [{ path: 'a', content: 'a {\n b {\n  c {\n   d {\n   }\n  }\n }\n}\n' }]),
    /blocks nested deeper than 3/,
  );
  t.match(
    await first({}, [{ path: 'a', content: `locals {\n  x = ${'['.repeat(150)}${']'.repeat(150)}\n}\n` }]),
    /nesting deeper than 100/,
  );
  t.match(
    await first({ maxEvalSteps: 1000 }, [
      { path: 'a', content: 'locals {\n  x = [for i in range(100) : [for j in range(100) : i * j]]\n}\n' },
    ]),
    /more than 1000 evaluation steps/,
  );
  t.match(
    await first({ maxStringLength: 1000 }, [
      { path: 'a', content: 'locals {\n  x = join("", [for i in range(200) : "abcdefgh"])\n}\n' },
    ]),
    /string too long/,
  );
  const doubling = Array.from(
    { length: 40 },
    (_, i) => `  s${i + 1} = "\${local.s${i}}\${local.s${i}}"`,
  ).join('\n');
  t.match(
    await first({}, [{ path: 'a', content: `locals {\n  s0 = "ab"\n${doubling}\n}\n` }]),
    /string too long/,
    'exponential strings stop',
  );
  const many = Array.from({ length: 30 }, (_, i) => `  l${i} = length([for x in range(900) : x])`).join('\n');
  t.match(
    await first({ maxTotalEvalSteps: 5000 }, [{ path: 'a', content: `locals {\n${many}\n}\n` }]),
    /evaluation stopped: more than 5000 steps/,
  );
  t.match(
    await first({}, [{ path: 'a', content: `locals {\n  x = ${'-'.repeat(300)}1\n}\n` }]),
    /more than 256 "-" or "!" in a row/,
  );
  t.match(
    await first({}, [
      {
        path: 'a',
        content: `locals {\n  x = "${'%{ if true }'.repeat(101)}${'%{ endif }'.repeat(101)}"\n}\n`,
      },
    ]),
    /template directives nested deeper than 100/,
  );
  const chain = Array.from({ length: 400 }, (_, i) => `  c${i} = local.c${i + 1}`).join('\n');
  t.match(
    await first({}, [{ path: 'a', content: `locals {\n${chain}\n  c400 = 1\n}\n` }]),
    /more than 256 deep/,
  );
});

t.test('readManifestDir: glob, skipped folders, symlinks and size limits', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fluke-manifests-'));
  const outside = await mkdtemp(join(tmpdir(), 'fluke-outside-'));
  t.teardown(() => Promise.all([rm(dir, { recursive: true }), rm(outside, { recursive: true })]));
  await mkdir(join(dir, 'apps/web'), { recursive: true });
  await mkdir(join(dir, '.git'));
  await mkdir(join(dir, 'node_modules/x'), { recursive: true });
  await writeFile(join(dir, 'top.fluke.hcl'), 'locals {}\n');
  await writeFile(join(dir, 'apps/web/web.fluke.hcl'), 'locals {}\n');
  await writeFile(join(dir, 'apps/readme.md'), 'no');
  await writeFile(join(dir, '.git/x.fluke.hcl'), 'nope');
  await writeFile(join(dir, 'node_modules/x/y.fluke.hcl'), 'nope');
  await writeFile(join(outside, 'secret.fluke.hcl'), 'nope');
  await symlink(join(outside, 'secret.fluke.hcl'), join(dir, 'escape.fluke.hcl'));
  await symlink(join(dir, 'top.fluke.hcl'), join(dir, 'alias.fluke.hcl'));
  await symlink(outside, join(dir, 'linked-dir'));

  const files = await readManifestDir(dir);
  t.same(
    files.map((f) => f.path),
    ['alias.fluke.hcl', 'apps/web/web.fluke.hcl', 'top.fluke.hcl'],
  );
  t.same(
    (await readManifestDir(dir, 'apps/**/*.hcl')).map((f) => f.path),
    ['apps/web/web.fluke.hcl'],
  );
  await t.rejects(readManifestDir(dir, undefined, { maxFiles: 2 }), /more than 2 manifest files/);
  await writeFile(join(dir, 'big.fluke.hcl'), 'x'.repeat(500));
  const err = await readManifestDir(dir, undefined, { maxFileBytes: 100 }).catch((e: unknown) => e);
  t.ok(err instanceof ManifestReadError);
  t.match((err as ManifestReadError).diagnostics, [{ file: 'big.fluke.hcl', line: 1, message: /500 bytes/ }]);
  await t.rejects(readManifestDir(join(dir, 'missing')), /no such directory/);
});
