/** Replaces (or appends) one `## Heading` section of bench/RESULTS.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function writeResultsSection(
  heading: string,
  section: string,
  file = fileURLToPath(new URL('./RESULTS.md', import.meta.url)),
): void {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = '# Benchmark results\n\n';
  }
  // The whole heading line: "## Reconcile cycle" must not match "## Reconcile cycle, scaled out".
  const at = `\n${text}`.indexOf(`\n## ${heading}\n`);
  const start = at < 0 ? -1 : at;
  if (start < 0) {
    text = `${text.trimEnd()}\n\n${section}`;
  } else {
    const next = text.indexOf('\n## ', start + 1);
    text = text.slice(0, start) + section + (next < 0 ? '' : text.slice(next + 1));
  }
  writeFileSync(file, `${text.trimEnd()}\n`);
}
