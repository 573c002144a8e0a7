import { dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The package root, whether running from source (shared/) or compiled (dist/shared/). */
export const packageRoot = resolve(here, here.endsWith(`${sep}dist${sep}shared`) ? '../..' : '..');
