import { runCli } from './program.js';

// The `buildman` entry (bin/buildman.js). Exiting explicitly, once stdout has drained, keeps an idle
// keep-alive socket or a leftover timer from holding a finished command open.
const code = await runCli(process.argv.slice(2));
process.stdout.write('', () => process.exit(code));
