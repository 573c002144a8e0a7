import { readFileSync } from 'node:fs';
import { packageRoot } from '../../shared/paths.js';
import { PROTOCOL_VERSION } from '../../shared/protocol.js';

export async function run(argv: string[]): Promise<number> {
  const pkg = JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string };
  const info = {
    version: pkg.version,
    protocol: PROTOCOL_VERSION,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  if (argv.includes('-o') && argv[argv.indexOf('-o') + 1] === 'json')
    process.stdout.write(`${JSON.stringify(info)}\n`);
  else
    process.stdout.write(
      `fluke ${info.version} (protocol v${info.protocol}, node ${info.node}, ${info.platform})\n`,
    );
  return 0;
}
