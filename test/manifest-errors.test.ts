// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
import t from 'tap';
import { ManifestCompiler } from '../shared/manifest/compile.js';

/** A task body with a valid selector, so each case shows only its own problem. */
const task = (body: string, name = 'web'): string =>
  `task "${name}" {\n  selector { match_labels = { role = "web" } }\n${body}\n}\n`;
const shell = (fields: string, name = 'a'): string => task(`  shell "${name}" {\n${fields}\n  }`);
const ok = 'check = "true"\n    command = "true"';

interface Case {
  name: string;
  files: Record<string, string>;
  message: string;
  file?: string;
  line: number;
  column?: number;
}

const one = (name: string, src: string, message: string, line: number, column?: number): Case => ({
  name,
  files: { 'm.fluke.hcl': src },
  message,
  line,
  ...(column === undefined ? {} : { column }),
});

const cases: Case[] = [
  one('syntax: unclosed block', 'task "x" {\n  selector {}\n', 'Unclosed configuration block', 1, 10),
  one('syntax: missing value', 'locals {\n  a =\n}\n', 'Expected the start of an expression', 2),
  one(
    'syntax: bad token',
    'task "x" {\n  selector { match_labels = { a = "b" } }\n  shell "s" { check = "a" + }\n}\n',
    'Invalid expression',
    3,
  ),
  one(
    'unknown top-level block',
    'resource "x" {}\n',
    'unknown block "resource"; expected locals or task',
    1,
    1,
  ),
  one('top-level attribute', 'x = 1\n', 'unexpected attribute "x" at the top level', 1, 1),
  one('task without a name', 'task {\n}\n', 'a task block takes exactly one name', 1),
  one(
    'task name not an identifier',
    'task "bad name" {\n}\n',
    'task name "bad name" is not an identifier',
    1,
  ),
  one(
    'missing selector',
    'task "x" {\n  shell "a" {\n    check = "true"\n    command = "true"\n  }\n}\n',
    'task "x": missing selector block',
    1,
  ),
  one('two selectors', task('  selector { match_labels = { a = "b" } }'), 'more than one selector block', 3),
  one('unknown task attribute', task('  owner = "me"'), 'task "web": unknown attribute "owner"', 3, 3),
  one('unknown executor type', task('  docker "x" {\n  }'), 'unknown executor type "docker"', 3, 3),
  one('unknown block in task', task('  hooks {\n  }'), 'unknown block "hooks"', 3),
  one(
    'executor without a name',
    task('  shell {\n    check = "a"\n  }'),
    'a shell block takes exactly one name',
    3,
  ),
  one(
    'step name not an identifier',
    task('  shell "a b" {\n    check = "a"\n    command = "b"\n  }'),
    'step name "a b" is not an identifier',
    3,
  ),
  one(
    'duplicate step names across types',
    task(`  shell "a" {\n    ${ok}\n  }\n  systemd "a" { unit = "a.service" }`),
    'step "a" is declared twice (lines 3 and 7)',
    7,
  ),
  one(
    'shell without check',
    shell('    command = "true"'),
    'shell "a": missing required attribute "check"',
    3,
  ),
  one(
    'shell without command',
    shell('    check = "true"'),
    'shell "a": missing required attribute "command"',
    3,
  ),
  one(
    'systemd without unit',
    task('  systemd "s" {\n    state = "running"\n  }'),
    'systemd "s": missing required attribute "unit"',
    3,
  ),
  one(
    'mise without working_dir',
    task('  mise "m" {\n    check_task = "c"\n  }'),
    'mise "m": missing required attribute "working_dir"',
    3,
  ),
  one(
    'mise git without url',
    task('  mise "m" {\n    working_dir = "/srv"\n    git {\n      branch = "x"\n    }\n  }'),
    'git: missing required attribute "url"',
    5,
  ),
  one('unknown shell attribute', shell(`    ${ok}\n    timeout = "5s"`), 'unknown attribute "timeout"', 6, 5),
  one(
    'git written as an attribute',
    task('  mise "m" {\n    working_dir = "/srv"\n    git = { url = "x" }\n  }'),
    '"git" is a block',
    5,
  ),
  one(
    'bad systemd state',
    task('  systemd "s" {\n    unit = "a.service"\n    state = "started"\n  }'),
    'state must be one of running, stopped; got "started"',
    5,
    5,
  ),
  one(
    'bad on_failure',
    shell(`    ${ok}\n    on_failure = "retry"`),
    'on_failure must be one of abort, continue; got "retry"',
    6,
  ),
  one(
    'bad drift policy',
    task('  drift { policy = "sometimes" }'),
    'policy must be one of remediate, remediate_and_alert, alert_only; got "sometimes"',
    3,
  ),
  one('drift without policy', task('  drift {\n  }'), 'drift: missing required attribute "policy"', 3),
  one(
    'bad selector operator',
    'task "x" {\n  selector {\n    match_expressions = [{ key = "zone", operator = "Within", values = ["a"] }]\n  }\n}\n',
    'operator must be one of In, NotIn, Exists, DoesNotExist; got "Within"',
    3,
  ),
  one(
    'values on Exists',
    'task "x" {\n  selector {\n    match_expressions = [{ key = "zone", operator = "Exists", values = ["a"] }]\n  }\n}\n',
    'values must not be set for operator Exists',
    3,
  ),
  one(
    'values on DoesNotExist',
    'task "x" {\n  selector {\n    match_expressions = [{ key = "c", operator = "DoesNotExist", values = [] }]\n  }\n}\n',
    'values must not be set for operator DoesNotExist',
    3,
  ),
  one(
    'In without values',
    'task "x" {\n  selector {\n    match_expressions = [{ key = "zone", operator = "In" }]\n  }\n}\n',
    'values is required for operator In',
    3,
  ),
  one(
    'NotIn with non-string values',
    'task "x" {\n  selector {\n    match_expressions = [{ key = "z", operator = "NotIn", values = [1] }]\n  }\n}\n',
    'values must be a list of strings',
    3,
  ),
  one(
    'match_expressions not a list',
    'task "x" {\n  selector {\n    match_expressions = { key = "z" }\n  }\n}\n',
    'match_expressions must be a list, got map',
    3,
  ),
  one(
    'number for check',
    shell('    check = 1\n    command = "true"'),
    'check must be a string, got number',
    4,
    5,
  ),
  one(
    'bool for command',
    shell('    check = "true"\n    command = true'),
    'command must be a string, got bool',
    5,
  ),
  one(
    'string for enabled',
    task('  systemd "s" {\n    unit = "a.service"\n    enabled = "yes"\n  }'),
    'enabled must be true or false, got string',
    5,
  ),
  one(
    'non-string label value',
    'task "x" {\n  selector { match_labels = { port = 80 } }\n}\n',
    'match_labels.port must be a string, got number',
    2,
  ),
  one(
    'env value not a string',
    shell(`    ${ok}\n    env = { A = [1] }`),
    'env.A must be a string, got list',
    6,
  ),
  one(
    'env name invalid',
    shell(`    ${ok}\n    env = { "A-B" = "x" }`),
    '"A-B" is not a valid environment variable name',
    6,
  ),
  one(
    'invalid run_as',
    shell(`    ${ok}\n    run_as = "Root User"`),
    'run_as "Root User" is not a valid user name',
    6,
  ),
  one('run_as too long', shell(`    ${ok}\n    run_as = "${'a'.repeat(33)}"`), 'is not a valid user name', 6),
  one(
    'systemd unit without suffix',
    task('  systemd "s" { unit = "nginx" }'),
    'unit "nginx" needs a unit type suffix',
    3,
  ),
  one('empty check', shell('    check = ""\n    command = "x"'), 'check must not be empty', 4),
  one(
    'unknown local',
    shell('    check = "test -d ${local.nope}"\n    command = "x"'),
    'check: unknown local "nope"',
    4,
    5,
  ),
  one(
    'unknown function',
    shell('    check = shout("x")\n    command = "x"'),
    'check: unknown function "shout"',
    4,
  ),
  one('unknown reference', shell('    check = var.x\n    command = "x"'), 'unknown reference "var"', 4),
  one(
    'locals cycle',
    'locals {\n  a = local.b\n  b = "${local.c}/x"\n  c = local.a\n}\n',
    'locals refer to each other in a cycle: a -> b -> c -> a',
    2,
    3,
  ),
  one('self-referencing local', 'locals {\n  a = "${local.a}"\n}\n', 'cycle: a -> a', 2),
  one(
    'local failing to evaluate',
    'locals {\n  a = 1\n  b = local.a + "x"\n}\n',
    'local.b: operator + needs numbers, got string',
    3,
  ),
  one(
    'blocks inside locals',
    'locals {\n  a = 1\n  inner {\n  }\n}\n',
    'locals: unexpected block "inner"',
    3,
  ),
  one(
    'interpolating a list',
    shell('    check = "echo ${[1, 2]}"\n    command = "x"'),
    'cannot put a list into a template',
    4,
  ),
  one(
    'bad directive',
    shell('    check = "%{ while true }x%{ endwhile }"\n    command = "x"'),
    'not a valid template control keyword',
    4,
  ),
  one(
    'condition not a bool',
    shell('    check = 1 ? "a" : "b"\n    command = "x"'),
    'a condition needs a bool, got number',
    4,
  ),
  {
    name: 'duplicate task across files names both places',
    files: {
      'a.fluke.hcl': task(`  shell "a" {\n    ${ok}\n  }`, 'dup'),
      'b/b.fluke.hcl': `\n\n${task(`  shell "a" {\n    ${ok}\n  }`, 'dup')}`,
    },
    message: 'task "dup" is declared twice: at a.fluke.hcl:1 and b/b.fluke.hcl:3',
    file: 'b/b.fluke.hcl',
    line: 3,
  },
  {
    name: 'duplicate local across files',
    files: { 'a.fluke.hcl': 'locals {\n  x = 1\n}\n', 'b.fluke.hcl': 'locals {\n  y = 2\n  x = 3\n}\n' },
    message: 'local "x" is declared twice: at a.fluke.hcl:2 and b.fluke.hcl:3',
    file: 'b.fluke.hcl',
    line: 3,
  },
];

t.test('every invalid manifest reports its message at its place', async (t) => {
  t.ok(cases.length >= 30, `${cases.length} cases`);
  const compiler = new ManifestCompiler();
  for (const c of cases) {
    const files = Object.entries(c.files).map(([path, content]) => ({ path, content }));
    const result = await compiler.compile(files);
    const file = c.file ?? 'm.fluke.hcl';
    const hit = result.errors.find(
      (e) => e.message.includes(c.message) && e.file === file && e.line === c.line,
    );
    t.ok(hit, c.name, { errors: result.errors, want: { file, line: c.line, message: c.message } });
    if (hit && c.column !== undefined) t.equal(hit.column, c.column, `${c.name}: column`);
  }
});

t.test('all errors are reported in one run, across files, in file:line order', async (t) => {
  const result = await new ManifestCompiler().compile([
    { path: 'b.fluke.hcl', content: shell('    check = 1\n    command = 2') },
    { path: 'a.fluke.hcl', content: 'task "x" {\n}\nbogus "y" {\n}\n' },
  ]);
  t.same(
    result.errors.map((e) => `${e.file}:${e.line}`),
    ['a.fluke.hcl:1', 'a.fluke.hcl:3', 'b.fluke.hcl:4', 'b.fluke.hcl:5'],
  );
});

t.test('a syntax error in one file does not hide errors in another', async (t) => {
  const result = await new ManifestCompiler().compile([
    { path: 'a.fluke.hcl', content: 'task "x" {\n' },
    { path: 'b.fluke.hcl', content: 'nope "y" {\n}\n' },
  ]);
  t.equal(result.errors.length, 2);
  t.match(result.errors[1]?.message, /unknown block "nope"/);
});

t.test('warnings: a selector that matches every host, a task without steps', async (t) => {
  const result = await new ManifestCompiler().compile([
    {
      path: 'w.fluke.hcl',
      content:
        'task "all" {\n  selector {\n  }\n  shell "a" {\n    check = "true"\n    command = "true"\n  }\n}\ntask "empty" {\n  selector { match_labels = { a = "b" } }\n}\n',
    },
  ]);
  t.same(result.errors, []);
  t.same(
    result.warnings.map((w) => [w.line, w.message]),
    [
      [2, 'task "all": selector matches every host'],
      [9, 'task "empty" has no steps'],
    ],
  );
});
