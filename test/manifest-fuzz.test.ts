// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are HCL templates, not JS ones
/**
 * Generated garbage into the compiler: it must always resolve with diagnostics (never throw,
 * never hang), and still compile a good manifest afterwards. Seeded, so failures reproduce. The
 * mutators are testkit/fuzz/hcl-fuzz.ts's, which test/fuzz-hcl.test.ts runs at volume.
 */
import t from 'tap';
import { ManifestCompiler } from '../shared/manifest/compile.js';
import { mutateHcl, randomText, RICH_MANIFEST as VALID } from '../testkit/fuzz/hcl-fuzz.js';
import { rng } from '../testkit/fuzz/prng.js';

/** The one assertion survives() needs. */
interface Failer {
  fail(message: string, extra: { threw: string; ms: number; sample: string }): boolean;
}

async function survives(
  t: Failer,
  compiler: ManifestCompiler,
  content: string,
  label: string,
): Promise<void> {
  const started = performance.now();
  let threw: unknown = null;
  try {
    const result = await compiler.compile([{ path: 'fuzz.fluke.hcl', content }]);
    if (!Array.isArray(result.errors) || !Array.isArray(result.state.tasks))
      threw = new Error('bad result shape');
    for (const e of result.errors) {
      if (typeof e.line !== 'number' || e.line < 1 || typeof e.message !== 'string')
        threw = new Error(`bad diagnostic ${JSON.stringify(e)}`);
    }
  } catch (err) {
    threw = err;
  }
  const ms = performance.now() - started;
  if (threw || ms > 20_000) t.fail(label, { threw: String(threw), ms, sample: content.slice(0, 300) });
}

t.test('mutated valid manifests', async (t) => {
  const compiler = new ManifestCompiler();
  const r = rng(42);
  for (let i = 0; i < 400; i++) await survives(t, compiler, mutateHcl(VALID, r), `mutation ${i}`);
  t.pass('400 mutations');
});

t.test('random bytes', async (t) => {
  const compiler = new ManifestCompiler();
  const r = rng(7);
  for (let i = 0; i < 150; i++) await survives(t, compiler, randomText(r, 1 + r.int(2000)), `bytes ${i}`);
  t.pass('150 random inputs');
});

t.test('deep nesting and huge strings', async (t) => {
  const compiler = new ManifestCompiler();
  const deep = (n: number) => [
    `locals {\n  x = ${'['.repeat(n)}${']'.repeat(n)}\n}\n`,
    `locals {\n  x = ${'('.repeat(n)}1${')'.repeat(n)}\n}\n`,
    `locals {\n  x = ${'{a = '.repeat(n)}1${'}'.repeat(n)}\n}\n`,
    `${'a {\n'.repeat(n)}${'}\n'.repeat(n)}`,
    `locals {\n  x = ${'"${'.repeat(n)}1${'}"'.repeat(n)}\n}\n`,
    `locals {\n  x = ${'-'.repeat(n)}1\n}\n`,
    `locals {\n  x = ${'!'.repeat(n)}true\n}\n`,
    `locals {\n  x = "${'%{ if true }'.repeat(n)}x${'%{ endif }'.repeat(n)}"\n}\n`,
    `locals {\n  x = 1${' + 1'.repeat(n)}\n}\n`,
    `locals {\n  x = true${' ? 1 : true'.repeat(n)}\n}\n`,
    `locals {\n  x = "${'%{ for a in [1] }'.repeat(n)}x${'%{ endfor }'.repeat(n)}"\n}\n`,
    `locals {\n  x = ${'[for a in '.repeat(n)}[1]${' : a]'.repeat(n)}\n}\n`,
  ];
  for (const n of [50, 65, 101, 5000, 200_000]) {
    for (const [i, content] of deep(n).entries())
      await survives(t, compiler, content, `depth ${n} shape ${i}`);
  }
  const huge = [
    `locals {\n  x = "${'x'.repeat(900_000)}"\n}\n`,
    `locals {\n  x = "${'${1}'.repeat(20_000)}"\n}\n`,
    `locals {\n  x = [${'1,'.repeat(40_000)}]\n}\n`,
    `# ${'x'.repeat(2_000_000)}`,
    'task "t" {\n  selector { match_labels = { a = "b" } }\n' +
      'shell "s" {\n check = "a"\n command = "b"\n}\n'.repeat(3000) +
      '}\n',
    `locals {\n${Array.from({ length: 5000 }, (_, i) => `  l${i} = "\${local.l${(i + 1) % 5000}}"`).join('\n')}\n}\n`,
  ];
  for (const [i, content] of huge.entries()) await survives(t, compiler, content, `huge ${i}`);
  t.pass('nesting and size');
});

t.test('the parser still works after all that', async (t) => {
  const result = await new ManifestCompiler().compile([{ path: 'ok.fluke.hcl', content: VALID }]);
  t.same(result.errors, []);
  t.equal(result.state.tasks[0]?.steps.length, 3);
});
