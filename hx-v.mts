import { main } from './bin/fluke.js';
process.exitCode = await main(process.argv.slice(2));
