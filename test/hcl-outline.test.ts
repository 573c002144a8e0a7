// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
import t from 'tap';
import { HclSyntaxError, MAX_HCL_NESTING, outlineHcl } from '../shared/hcl/outline.js';
import { parseHcl } from '../shared/hcl/parse.js';

const names = (src: string): string[] => {
  const out: string[] = [];
  const walk = (o: {
    attributes: { name: string }[];
    blocks: { type: string; labels: string[] }[];
  }): void => {
    for (const a of o.attributes) out.push(a.name);
    for (const b of o.blocks) out.push([b.type, ...b.labels].join(':'));
  };
  walk(outlineHcl(src));
  return out;
};

t.test('source order, positions and nesting', async (t) => {
  const src = [
    'z = 1', //                         1
    'task "b" {', //                    2
    '  systemd "s" { unit = "x" }', //  3
    '  shell "a" {', //                 4
    '    check = "true"', //            5
    '  }', //                           6
    '  mise m { working_dir = "/" }', // 7
    '}', //                             8
    'a = 2', //                         9
  ].join('\n');
  const o = outlineHcl(src);
  t.same(
    o.attributes.map((a) => [a.name, a.line, a.column]),
    [
      ['z', 1, 1],
      ['a', 9, 1],
    ],
  );
  t.equal(o.blocks.length, 1);
  const task = o.blocks[0]!;
  t.match(task, { type: 'task', labels: ['b'], line: 2, column: 1, endLine: 8 });
  t.same(
    task.blocks.map((b) => [b.type, b.labels[0], b.line, b.column, b.endLine]),
    [
      ['systemd', 's', 3, 3, 3],
      ['shell', 'a', 4, 3, 6],
      ['mise', 'm', 7, 3, 7],
    ],
  );
  t.same(task.blocks[1]!.attributes, [{ name: 'check', line: 5, column: 5 }]);
  t.same(task.blocks[0]!.attributes, [{ name: 'unit', line: 3, column: 17 }]);
});

t.test('comments of all three kinds are skipped', async (t) => {
  const src = `# a = 1 {
// b "x" {
/* c {
   d = 2 } */ e = 3 # f {
g = "h" // i }
j /* k */ "l" { m = 1 }
`;
  t.same(names(src), ['e', 'g', 'j:l']);
  t.throws(() => outlineHcl('a = 1 /* never closed'), HclSyntaxError);
});

t.test('object and tuple values are not blocks', async (t) => {
  const src = `match_labels = { role = "web", env = "prod" }
list = [
  { a = 1 },
  { b = { c = [1, 2] } },
]
obj = {
  nested = {
    k = "v"
  }
}
task "t" {
  for_each = { for k, v in local.m : k => v if v != "x" }
}
`;
  const o = outlineHcl(src);
  t.same(
    o.attributes.map((a) => a.name),
    ['match_labels', 'list', 'obj'],
  );
  t.same(o.blocks[0]!.attributes, [{ name: 'for_each', line: 12, column: 3 }]);
  t.same(o.blocks[0]!.blocks, []);
});

t.test('templates with braces, quotes and nested strings', async (t) => {
  const src = [
    'a = "x ${ {k = "}"}["k"] } y"',
    'b = "%{ if x == "{" }open%{ else }}%{ endif }"',
    'c = "${ join(",", [for s in ["}", "{"] : "${s}\\"" ]) }"',
    'd = "$${not a template {" ',
    'e = "escaped \\" quote { "',
    'f = "multi ${',
    '  1 + 2',
    '} line template"',
    'g = 1',
  ].join('\n');
  t.same(
    outlineHcl(src).attributes.map((a) => [a.name, a.line]),
    [
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 4],
      ['e', 5],
      ['f', 6],
      ['g', 9],
    ],
  );
});

t.test('heredocs', async (t) => {
  const src = `a = <<EOF
  b = "not an attribute {"
  }}} ]]] "
EOF
block {
  c = <<-SCRIPT
    #!/bin/sh
    echo "\${x} }"
    SCRIPT
  d = 1
}
e = "<<NOT a heredoc"
`;
  const o = outlineHcl(src);
  t.same(
    o.attributes.map((a) => [a.name, a.line]),
    [
      ['a', 1],
      ['e', 12],
    ],
  );
  t.same(
    o.blocks[0]!.attributes.map((a) => [a.name, a.line]),
    [
      ['c', 6],
      ['d', 10],
    ],
  );
  t.throws(() => outlineHcl('a = <<EOF\nnever closed\n'), { message: /unterminated heredoc/, line: 1 });
});

t.test('one-line blocks with one or several attributes', async (t) => {
  const src =
    'mise "x" { working_dir = local.a  check_task = "y-${local.n}" }\ns { a = [1, 2] b = { c = 1 } }\n';
  const o = outlineHcl(src);
  t.same(o.blocks[0]!.attributes, [
    { name: 'working_dir', line: 1, column: 12 },
    { name: 'check_task', line: 1, column: 35 },
  ]);
  t.same(
    o.blocks[1]!.attributes.map((a) => a.name),
    ['a', 'b'],
  );
  t.same(names('drift { policy = "alert_only" }\nx = a == b\n'), ['x', 'drift']);
});

t.test('labels: quoted with escapes, identifiers, several', async (t) => {
  const o = outlineHcl('resource "a \\"b\\"" c "d" {\n}\nempty {}\n');
  t.same(o.blocks[0]!.labels, ['a "b"', 'c', 'd']);
  t.same(o.blocks[1], {
    type: 'empty',
    labels: [],
    line: 3,
    column: 1,
    endLine: 3,
    attributes: [],
    blocks: [],
  });
});

t.test('CRLF line endings', async (t) => {
  const o = outlineHcl('a = 1\r\nb {\r\n  c = "x"\r\n}\r\n');
  t.same(o.blocks[0]!.attributes, [{ name: 'c', line: 3, column: 3 }]);
  t.equal(o.blocks[0]!.endLine, 4);
});

t.test('syntax errors carry positions', async (t) => {
  const cases: [string, RegExp, number, number][] = [
    ['a = "unterminated\nb = 1\n', /unterminated string/, 1, 5],
    ['task "x" {\n  a = 1\n', /unclosed block/, 1, 10],
    ['a = 1\n}\n', /unexpected '}'/, 2, 1],
    ['a = [1, 2\nb = 3\n', /unclosed \[/, 1, 5],
    ['a = (1, 2]\n', /unexpected '\]', expected '\)'/, 1, 10],
    ['a = "${ x "\n', /unterminated string|unclosed/, 1, 11],
    ['task "x"\n{\n}\n', /expected '=' or '\{' after 'task x'/, 1, 9],
    ['= 1\n', /expected an attribute or block name/, 1, 1],
    ['a =\nb = 1\n', /attribute 'a' has no value/, 1, 4],
    ['x { y = ] }\n', /unexpected '\]'/, 1, 9],
  ];
  for (const [src, message, line, column] of cases) {
    t.throws(() => outlineHcl(src), { name: 'HclSyntaxError', message, line, column }, JSON.stringify(src));
  }
});

t.test('nesting is bounded, never a stack overflow', async (t) => {
  t.throws(() => outlineHcl('a = ' + '['.repeat(100_000)), { name: 'HclSyntaxError', message: /nesting/ });
  t.throws(() => outlineHcl('b {\n'.repeat(100_000)), { name: 'HclSyntaxError', message: /nested/ });
  t.doesNotThrow(() =>
    outlineHcl('a = ' + '['.repeat(MAX_HCL_NESTING - 1) + ']'.repeat(MAX_HCL_NESTING - 1)),
  );
});

t.test('fuzz: garbage never throws anything but HclSyntaxError, never hangs', async (t) => {
  let seed = 42;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const tokens = [
    'a',
    'task',
    '"x"',
    '"',
    '{',
    '}',
    '[',
    ']',
    '(',
    ')',
    '=',
    '==',
    '\n',
    ' ',
    '#',
    '//',
    '/*',
    '*/',
    '${',
    '%{',
    '$${',
    '\\',
    '<<EOF\n',
    'EOF',
    '<<-X\n',
    'X',
    ',',
    ':',
    '?',
    '=>',
    'for',
    '1.5',
    '-',
  ];
  const started = Date.now();
  let ok = 0;
  for (let i = 0; i < 3000; i++) {
    let src = '';
    if (i % 2 === 0) {
      for (let j = rand(200); j > 0; j--) src += tokens[rand(tokens.length)];
    } else {
      for (let j = rand(300); j > 0; j--) src += String.fromCharCode(rand(128));
    }
    try {
      outlineHcl(src);
      ok++;
    } catch (err) {
      if (!(err instanceof HclSyntaxError)) {
        t.fail(`non-syntax error for ${JSON.stringify(src)}: ${String(err)}`);
        return;
      }
      t.ok(err.line >= 1 && err.column >= 1, 'positions are 1-based') || t.end();
    }
  }
  t.ok(ok > 0, 'some garbage happens to be valid');
  t.ok(Date.now() - started < 20_000, 'fast');
  const big = 'a = "' + 'x'.repeat(2_000_000) + '"\n' + 'b { c = 1 }\n'.repeat(50_000);
  const t0 = Date.now();
  t.equal(outlineHcl(big).blocks.length, 50_000);
  // Generous: the point is linear time, on a machine that may be busy.
  t.ok(Date.now() - t0 < 8000, 'linear on large input');
});

t.test('parseHcl: JSON, one-line blocks, mapped error positions', async (t) => {
  const ok = await parseHcl('m.hcl', 'mise "x" { working_dir = local.a  check_task = "y" }\n');
  t.same(ok, { ok: true, json: { mise: { x: [{ working_dir: '${local.a}', check_task: 'y' }] } } });

  const bad = await parseHcl(
    'dir/my file.hcl',
    'a = 1\nmise "x" { working_dir = "/"  check_task = = "y" }\n',
  );
  t.same(bad, {
    ok: false,
    error: {
      file: 'dir/my file.hcl',
      line: 2,
      column: 44,
      message:
        'Invalid expression; Expected the start of an expression, but found an invalid expression token.',
    },
  });

  const dup = await parseHcl('d.hcl', 'a = 1\na = 2\n');
  t.match(dup, { ok: false, error: { line: 2, column: 1, message: /Attribute redefined/ } });

  const unclosed = await parseHcl('u.hcl', 'x {\n  a = 1\n');
  t.match(unclosed, {
    ok: false,
    error: { line: 1, message: /Unclosed configuration block|unclosed block/ },
  });
});

t.test('a byte order mark is skipped', async (t) => {
  t.same(outlineHcl('\uFEFFserver {\n  a = 1\n}\n').blocks[0]?.type, 'server');
  t.same(outlineHcl('\uFEFFx = 1\n').attributes, [{ name: 'x', line: 1, column: 1 }]);
});
