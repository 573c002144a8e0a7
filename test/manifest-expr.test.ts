// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
import t from 'tap';
import { Budget } from '../shared/hcl/eval/budget.js';
import { evaluate } from '../shared/hcl/eval/evaluate.js';
import { parseTemplateBody } from '../shared/hcl/eval/parse-expression.js';
import { toPlain } from '../shared/hcl/eval/value.js';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import type { ShellStep } from '../shared/types.js';

const compiler = new ManifestCompiler();

const LOCALS = `
  app_dir = "/opt/app"
  node    = 22
  names   = ["web", "db", "cache"]
  ports   = { web = 80, db = 5432 }
  on      = true
  nested  = { a = [{ name = "x" }, { name = "y" }] }
  nothing = null
`;

/** Compiles `check = <attr>` (HCL source) and returns the check string, or the errors. */
async function check(attr: string, locals = LOCALS): Promise<string> {
  const src = `locals {${locals}}\ntask "t" {\n  selector { match_labels = { a = "b" } }\n  shell "s" {\n    check = ${attr}\n    command = "x"\n  }\n}\n`;
  const r = await compiler.compile([{ path: 'e.fluke.hcl', content: src }]);
  if (r.errors.length > 0) return `ERROR ${r.errors.map((e) => `${e.line}: ${e.message}`).join('; ')}`;
  return (r.state.tasks[0]?.steps[0] as ShellStep | undefined)?.check ?? '';
}

/** Evaluates HCL expression `expr` and returns its value as JSON data. */
async function value(expr: string, locals = LOCALS): Promise<unknown> {
  const out = await check(`jsonencode(${expr})`, locals);
  return out.startsWith('ERROR') ? out : JSON.parse(out);
}

t.test('literals, strings and `$`', async (t) => {
  t.equal(await check('"plain"'), 'plain');
  t.equal(await check('"test -n \\"$HOME\\""'), 'test -n "$HOME"', '$ without { stays literal');
  t.equal(await check('"cost: $5 and 100%"'), 'cost: $5 and 100%');
  t.equal(
    await check('"$${not_interpolated} %%{ not_a_directive }"'),
    '${not_interpolated} %{ not_a_directive }',
  );
  t.equal(await check('"tab\\tnewline\\nquote\\" back\\\\ \\u00e9"'), 'tab\tnewline\nquote" back\\ é');
  t.equal(await check('<<EOT\nline ${local.node}\n  $PATH\nEOT'), 'line 22\n  $PATH\n', 'heredoc');
  t.equal(await check('<<-EOT\n    indented\n      more\n    EOT'), 'indented\n  more\n', 'indented heredoc');
  t.same(await value('[1, 2.5, -3, 1e3, true, null, "s"]'), [1, 2.5, -3, 1000, true, null, 's']);
  t.same(await value('{ a = 1, "b c" = 2, d: 3 }'), { a: 1, 'b c': 2, d: 3 });
});

t.test('templates', async (t) => {
  t.equal(await check('"${local.app_dir}/bin"'), '/opt/app/bin');
  t.equal(await check('"node-${local.node}"'), 'node-22', 'numbers interpolate');
  t.equal(await check('"${local.on}"'), 'true', 'a computed bool becomes text where text is wanted');
  t.same(await value('"${local.on}"'), true, 'a lone interpolation keeps its type');
  t.equal(await check('"v${local.on}"'), 'vtrue');
  t.equal(await check('"%{ if local.on }yes%{ else }no%{ endif }"'), 'yes');
  t.equal(await check('"%{ if !local.on }yes%{ endif }!"'), '!');
  t.equal(await check('"%{ for n in local.names }${n},%{ endfor }"'), 'web,db,cache,');
  t.equal(await check('"%{ for i, n in local.names }${i}=${n} %{ endfor }"'), '0=web 1=db 2=cache ');
  t.equal(
    await check('"%{ for k, v in local.ports }${k}:${v};%{ endfor }"'),
    'db:5432;web:80;',
    'maps iterate by key',
  );
  t.equal(await check('"a  %{~ if true ~}  b  %{~ endif ~}  c"'), 'abc', 'strip markers');
  t.equal(await check('"x ${ "inner ${local.node}" } y"'), 'x inner 22 y', 'nested templates');
  t.equal(await check('"${upper("a")}${lower("B")}"'), 'Ab');
});

t.test('operators, conditionals, collections, for expressions', async (t) => {
  t.same(await value('1 + 2 * 3 - 4 / 2'), 5);
  t.same(await value('(1 + 2) * 3 % 4'), 1);
  t.same(await value('-local.node'), -22);
  t.same(await value('[1 < 2, 2 <= 2, 3 > 4, 4 >= 5, 1 == 1, "a" != "b", 1 == "1"]'), [
    true,
    true,
    false,
    false,
    true,
    true,
    false,
  ]);
  t.same(await value('[true && false, true || false, !true]'), [false, true, false]);
  t.same(await value('local.node > 20 ? "new" : "old"'), 'new');
  t.same(await value('local.names[1]'), 'db');
  t.same(await value('local.ports["db"]'), 5432);
  t.same(await value('local.ports.web'), 80);
  t.same(await value('local.nested.a[1].name'), 'y');
  t.same(await value('local.nested.a[*].name'), ['x', 'y'], 'splat');
  t.same(await value('[for n in local.names : upper(n)]'), ['WEB', 'DB', 'CACHE']);
  t.same(await value('[for i, n in local.names : "${i}-${n}" if n != "db"]'), ['0-web', '2-cache']);
  t.same(await value('{ for n in local.names : n => length(n) }'), { web: 3, db: 2, cache: 5 });
  t.same(await value('{ for k, v in local.ports : v => k }'), { '80': 'web', '5432': 'db' });
  t.same(await value('{ for n in local.names : length(n) => n... }'), {
    '3': ['web'],
    '2': ['db'],
    '5': ['cache'],
  });
  t.same(await value('{ (local.app_dir) = 1 }'), { '/opt/app': 1 }, 'parenthesised keys are expressions');
  t.same(
    await value('{ for x in [1, 2] : "k" => x }'),
    'ERROR 13: check: duplicate key "k" in a for expression; add \'...\' to group',
  );
});

t.test('functions', async (t) => {
  const cases: [string, unknown][] = [
    ['lower("AbC")', 'abc'],
    ['upper("AbC")', 'ABC'],
    ['title("hello big world")', 'Hello Big World'],
    ['join(",", local.names)', 'web,db,cache'],
    ['join("-", ["a"], ["b", "c"])', 'a-b-c'],
    ['split(",", "a,b,,c")', ['a', 'b', '', 'c']],
    [
      'format("%s-%d-%05.1f-%q-%t-%x-%v-%%", "a", 7.9, 3.14159, "q", true, 255, [1])',
      'a-7-003.1-"q"-true-ff-[1]-%',
    ],
    ['format("%-4s|%4s", "a", "b")', 'a   |   b'],
    ['concat(["a"], [], ["b", "c"])', ['a', 'b', 'c']],
    ['merge({ a = 1, b = 1 }, { b = 2 }, null)', { a: 1, b: 2 }],
    ['[length("héllo"), length(local.names), length(local.ports)]', [5, 3, 2]],
    ['[contains(local.names, "db"), contains(local.names, "x")]', [true, false]],
    ['replace("a.b.c", ".", "/")', 'a/b/c'],
    ['trimspace("  x \\n")', 'x'],
    ['trim("--x--", "-")', 'x'],
    ['[trimprefix("foobar", "foo"), trimsuffix("foobar", "bar")]', ['bar', 'foo']],
    ['chomp("x\\n\\n")', 'x'],
    ['indent(2, "a\\nb")', 'a\n  b'],
    ['keys(local.ports)', ['db', 'web']],
    ['values(local.ports)', [5432, 80]],
    ['[lookup(local.ports, "db"), lookup(local.ports, "x", 0)]', [5432, 0]],
    ['coalesce("", null, "x")', 'x'],
    ['coalescelist([], ["a"])', ['a']],
    ['[tostring(1.5), tonumber("42"), tobool("true")]', ['1.5', 42, true]],
    ['tolist(["a"])', ['a']],
    ['flatten([["a", ["b"]], [], "c"])', ['a', 'b', 'c']],
    ['distinct(["a", "b", "a"])', ['a', 'b']],
    [
      '[range(3), range(1, 4), range(10, 0, -4)]',
      [
        [0, 1, 2],
        [1, 2, 3],
        [10, 6, 2],
      ],
    ],
    ['[min(3, 1, 2), max(3, 1, 2), abs(-4), ceil(1.2), floor(1.8)]', [1, 3, 4, 2, 1]],
    ['[substr("hello", 1, 3), substr("hello", -3, -1)]', ['ell', 'llo']],
    ['[startswith("hello", "he"), endswith("hello", "lo"), strcontains("hello", "ll")]', [true, true, true]],
    ['jsonencode({ b = [1, "x"], a = null })', '{"a":null,"b":[1,"x"]}'],
    ['sort(["b", "c", "a"])', ['a', 'b', 'c']],
    ['reverse([1, 2, 3])', [3, 2, 1]],
    ['[element(local.names, 4), index(local.names, "db")]', ['db', 1]],
    ['compact(["a", "", "b"])', ['a', 'b']],
    ['slice(local.names, 1, 3)', ['db', 'cache']],
    ['zipmap(["a", "b"], [1, 2])', { a: 1, b: 2 }],
    ['strrev("abc")', 'cba'],
    ['[base64encode("fluke"), base64decode("Zmx1a2U=")]', ['Zmx1a2U=', 'fluke']],
    ['concat(local.names...)', 'ERROR'],
    ['join(",", [local.names]...)', 'web,db,cache'],
  ];
  for (const [expr, want] of cases) {
    const got = await value(expr);
    if (want === 'ERROR') t.match(got, /^ERROR/, expr);
    else t.same(got, want, expr);
  }
});

t.test('errors name what went wrong', async (t) => {
  t.match(await check('"${local.nope}"'), /ERROR 13: check: unknown local "nope"/);
  t.match(await check('nope("x")'), /unknown function "nope"/);
  t.match(await check('"${x}"'), /unknown reference "x"/);
  t.match(await check('"${local}"'), /"local" must be followed by a name/);
  t.match(await check('local.names[5]'), /index 5 out of range for a list of 3/);
  t.match(await check('local.ports.nope'), /map has no key "nope"/);
  t.match(await check('1 / 0'), /division by zero/);
  t.match(await check('"a" + 1'), /operator \+ needs numbers, got string/);
  t.match(await check('"x${local.nothing}"'), /cannot put a null into a template/);
  t.match(await check('"%{ if 1 }x%{ endif }"'), /%\{ if \} needs a bool, got number/);
  t.match(await check('format("%s")'), /not enough arguments/);
  t.match(await check('lookup(local.ports, "x")'), /no key "x" and no default/);
});

t.test('locals refer to each other in any order, across files', async (t) => {
  const r = await compiler.compile([
    { path: 'a.fluke.hcl', content: 'locals {\n  url = "${local.base}/${local.path}"\n}\n' },
    {
      path: 'b.fluke.hcl',
      content:
        'locals {\n  base = "https://${local.host}"\n}\nlocals {\n  host = "example.org"\n  path = "x"\n}\ntask "t" {\n  selector { match_labels = { a = "b" } }\n  shell "s" {\n    check = "curl ${local.url}"\n    command = "x"\n  }\n}\n',
    },
  ]);
  t.same(r.errors, []);
  t.equal((r.state.tasks[0]?.steps[0] as ShellStep | undefined)?.check, 'curl https://example.org/x');
});

t.test('the evaluator on its own', async (t) => {
  const run = (text: string) =>
    toPlain(evaluate(parseTemplateBody(text, 64), { budget: new Budget(1000, 100), local: () => 'L' }));
  t.equal(run('${local.x}-${upper("a")}'), 'L-A');
  t.equal(run('no braces at all'), 'no braces at all');
  t.throws(() => run('${range(5000)}'), /more than 1000 evaluation steps/);
  t.throws(() => run('${join("", [for i in range(20) : "xxxxxxxxxx"])}'), /string too long/);
  t.throws(() => parseTemplateBody(`\${${'['.repeat(100)}${']'.repeat(100)}}`, 64), /nested deeper than 64/);
  t.throws(() => parseTemplateBody('${', 64), /expected an expression/);
  t.throws(() => parseTemplateBody('%{ if true }x', 64), /without a matching %\{ endif \}/);
  t.throws(() => parseTemplateBody('${<<EOT\nx\nEOT\n}', 64), /heredocs inside expressions/);
});
