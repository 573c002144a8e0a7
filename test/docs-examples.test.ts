/**
 * Every fenced ```hcl example in docs/*.md and README.md loads (server.hcl, agent.hcl) or
 * compiles (a manifest) with no error, and so do infra/config/*.hcl. The kind comes from the
 * info string (```hcl server, ```hcl agent, ```hcl manifest, ```hcl fragment for the few
 * deliberately partial ones, which are skipped) or, untagged, from the first block in it.
 * A broken example fails naming its file and line.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, type Env, parseAgentConfig, parseServerConfig } from '../shared/config/load.js';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import { packageRoot } from '../shared/paths.js';

const KINDS = ['server', 'agent', 'manifest', 'fragment'] as const;
type Kind = (typeof KINDS)[number];

interface Example {
  /** Line of the example's first line in the markdown file (1-based). */
  line: number;
  kind: Kind;
  text: string;
}

/** The ```hcl blocks of a markdown text; a block indented under a list item is dedented. */
function hclBlocks(markdown: string): Example[] | string {
  const lines = markdown.split('\n');
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```hcl\b\s*(\S*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const indent = open[1] as string;
    const tag = open[2] as string;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++) {
      const l = lines[j] as string;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l);
    }
    if (j === lines.length) return `line ${i + 1}: the \`\`\`hcl block is never closed`;
    const text = `${body.join('\n')}\n`;
    if (tag !== '' && !(KINDS as readonly string[]).includes(tag))
      return `line ${i + 1}: unknown tag "hcl ${tag}" (expected one of ${KINDS.join(', ')})`;
    out.push({ line: i + 2, kind: tag === '' ? guessKind(text) : (tag as Kind), text });
    i = j;
  }
  return out;
}

function guessKind(text: string): Kind {
  const first = /^\s*([a-z_]+)\b/m.exec(text.replace(/^\s*(#|\/\/).*$/gm, ''))?.[1];
  return first === 'server' || first === 'agent' ? first : 'manifest';
}

/** Any `$NAME` / `${NAME}` the example refers to reads as a placeholder value. */
const placeholders: Env = new Proxy({} as Record<string, string>, {
  get: (_target, name) => (typeof name === 'string' ? `example-${name.toLowerCase()}` : undefined),
});

const compiler = new ManifestCompiler({}, { parser: 'in-thread' });

/** Problems with one example, each as `file:line: message` (line in the markdown file). */
async function checkExample(file: string, ex: Example): Promise<string[]> {
  const at = (line: number) => `${file}:${ex.line + Math.max(line, 1) - 1}`;
  if (ex.kind === 'fragment') return [];
  if (ex.kind === 'manifest') {
    const result = await compiler.compile([{ path: 'example.fluke.hcl', content: ex.text }]);
    return result.errors.map((d) => `${at(d.line)}: manifest: ${d.message}`);
  }
  try {
    if (ex.kind === 'server') await parseServerConfig('server.hcl', ex.text, placeholders);
    else await parseAgentConfig('agent.hcl', ex.text, placeholders, 'example-host');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.errors.map((e) => `${at(e.line)}: ${ex.kind} config: ${e.field} ${e.message}`.trim());
  }
}

async function checkMarkdown(file: string, markdown: string): Promise<string[]> {
  const blocks = hclBlocks(markdown);
  if (typeof blocks === 'string') return [`${file}: ${blocks}`];
  const problems: string[] = [];
  for (const ex of blocks) problems.push(...(await checkExample(file, ex)));
  return problems;
}

async function docFiles(): Promise<string[]> {
  const docs = (await readdir(join(packageRoot, 'docs'))).filter((f) => f.endsWith('.md')).sort();
  return ['README.md', ...docs.map((f) => `docs/${f}`)];
}

t.test('every hcl example in the docs loads or compiles', async (t) => {
  let checked = 0;
  for (const file of await docFiles()) {
    const text = await readFile(join(packageRoot, file), 'utf8');
    const blocks = hclBlocks(text);
    if (typeof blocks !== 'string') checked += blocks.filter((b) => b.kind !== 'fragment').length;
    t.same(await checkMarkdown(file, text), [], file);
  }
  t.ok(checked >= 10, `${checked} examples checked`);
});

t.test('infra/config/*.hcl load', async (t) => {
  for (const [name, kind] of [
    ['server.hcl', 'server'],
    ['agent.hcl', 'agent'],
  ] as const) {
    const text = await readFile(join(packageRoot, 'infra/config', name), 'utf8');
    t.same(await checkExample(`infra/config/${name}`, { line: 1, kind, text }), [], name);
  }
});

t.test('a broken example fails, naming the file and line', async (t) => {
  const doc = [
    '# Title',
    '',
    '```hcl',
    'task "web" {',
    '  selector { match_labels = { role = "web" } }',
    '  shell "s" { check = "true" }',
    '}',
    '```',
    '',
    '- in a list:',
    '  ```hcl agent',
    '  agent {',
    '    server_url = "wss://x:7070"',
    '    token      = "t"',
    '    execution { command_timeout = "500us" }',
    '  }',
    '  ```',
    '',
    '```hcl fragment',
    'git { url = "x" }',
    '```',
    '',
    '```hcl server',
    'server {',
    '  agent_tokens = ["t"]',
    '  tls { enabled = false }',
    '}',
    '```',
  ].join('\n');
  const problems = await checkMarkdown('docs/x.md', doc);
  t.equal(problems.length, 3, problems.join('\n'));
  t.match(problems[0], /^docs\/x\.md:6: manifest: .*missing required attribute "command"/);
  t.match(problems[1], /^docs\/x\.md:15: agent config: agent\.execution\.command_timeout .*whole number/);
  t.match(problems[2], /^docs\/x\.md:24: server config: server\.git\.url required/);
  t.match(await checkMarkdown('docs/y.md', '```hcl yaml\nx\n```\n'), [/docs\/y\.md: line 1: unknown tag/]);
  t.match(await checkMarkdown('docs/z.md', 'a\n```hcl\nx = 1\n'), [/never closed/]);
});
